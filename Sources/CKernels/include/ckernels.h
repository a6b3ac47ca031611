#ifndef UNILIP_CKERNELS_H
#define UNILIP_CKERNELS_H

/// Kernels that use instructions beyond the package's x86-64-v3 baseline, compiled per function
/// with target attributes and chosen at run time, so the binary still runs on AVX2-only CPUs.

/// 1 when the CPU and the OS support AVX-512F (cpuid and XCR0), else 0.
int unilip_has_avx512(void);

/// C[m,n] = alpha·A·B + beta·C with A(i,p) = a[i·ars + p·acs] (A or Aᵀ, row-major) and B
/// row-major [k, n] with leading dimension ldb. beta = 0 never reads C.
/// AVX-512F only: call only when unilip_has_avx512() returns 1.
void unilip_gemm_avx512(long m, long n, long k, float alpha,
                        const float *a, long ars, long acs,
                        const float *b, long ldb,
                        float beta, float *c, long ldc);

/// C[m,n] = Σ_t A_t · B_t over `taps` products sharing C (a convolution's kernel taps read
/// from one padded input): A_t = a + t·tapStride, row-major [m, k] with leading dimension lda;
/// B_t = b + offsets[t], row-major [k, n] with leading dimension ldb. Overwrites C.
/// AVX-512F only.
void unilip_conv_avx512(long m, long n, long k, long taps,
                        const float *a, long tapStride, long lda,
                        const float *b, long ldb, const long *offsets,
                        float *c, long ldc);

/// max of x[0..<n] (-inf for n = 0). AVX-512F only.
float unilip_max_avx512(const float *x, long n);

/// x[i] = e^(x[i] − shift) in place, returning Σ of the results. Same polynomial as the SIMD8
/// `HeadKernels.exp8`: arguments below −88 (masked −inf scores) give exactly 0. AVX-512F only.
float unilip_exp_shift_avx512(float *x, long n, float shift);

/// y[i] = GELU(x[i]), the exact erf form (erf as in the SIMD8 `VectorMath.erf`). AVX-512F only.
void unilip_gelu_avx512(const float *x, float *y, long n);

/// gx[i] = g[i] · GELU′(x[i]) = g[i] · (Φ(x) + x·φ(x)). AVX-512F only.
void unilip_gelu_backward_avx512(const float *g, const float *x, float *gx, long n);

#endif
