#include "ckernels.h"
#include <immintrin.h>

int unilip_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

#define AVX512 __attribute__((target("avx512f")))
#define INLINE inline __attribute__((always_inline))

/// One mr × (16·nv) tile of C: columns masked by m0 (first 16) and m1 (next 16).
/// Column panels of B stay in L1/L2 across the row tiles of the caller's loop.
static INLINE AVX512 void tile(const int mr, const int nv, const int prefetch, __mmask16 m0, __mmask16 m1, long k,
                               float alpha, const float *a, long ars, long acs,
                               const float *b, long ldb, float beta, float *c, long ldc) {
    __m512 acc[8][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    // Separate row pointers indexed by one offset: stepping a single pointer row by row
    // chains the address adds and caps the loop below the FMA rate.
    const float *ar[8];
    for (int r = 0; r < mr; r++) ar[r] = a + r * ars;
    const float *bp = b;
    long off = 0;
    for (long p = 0; p < k; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
        __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, bp + 16) : _mm512_setzero_ps();
        if (prefetch) {
            // The next column panel's rows: B rows far apart (a convolution's padded planes)
            // defeat the hardware prefetcher.
            _mm_prefetch((const char *)(bp + 32), _MM_HINT_T0);
            _mm_prefetch((const char *)(bp + 48), _MM_HINT_T0);
        }
        for (int r = 0; r < mr; r++) {
            __m512 x = _mm512_set1_ps(ar[r][off]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            if (nv > 1) acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
        off += acs;
        bp += ldb;
    }
    __m512 va = _mm512_set1_ps(alpha);
    __m512 vb = _mm512_set1_ps(beta);
    for (int r = 0; r < mr; r++) {
        float *cp = c + r * ldc;
        for (int v = 0; v < nv; v++) {
            __mmask16 mk = v == 0 ? m0 : m1;
            __m512 y = _mm512_mul_ps(acc[r][v], va);
            if (beta != 0) y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, cp + 16 * v), vb, y);
            _mm512_mask_storeu_ps(cp + 16 * v, mk, y);
        }
    }
}

/// All rows of one column panel (16·nv columns): tiles of 8 rows, then 4, then 1.
static INLINE AVX512 void panel(const int nv, __mmask16 m0, __mmask16 m1, long m, long k, float alpha,
                                const float *a, long ars, long acs, const float *b, long ldb,
                                float beta, float *c, long ldc) {
    long i = 0;
    if (m >= 8) {
        tile(8, nv, 1, m0, m1, k, alpha, a, ars, acs, b, ldb, beta, c, ldc);
        i = 8;
    }
    for (; i + 8 <= m; i += 8)
        tile(8, nv, 0, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
    for (; i + 4 <= m; i += 4)
        tile(4, nv, 0, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
    for (; i < m; i++)
        tile(1, nv, 0, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
}

/// Depth of one pass over B: 128 rows of a 32-column panel (16 KB) stay in L1 while every row
/// tile reads them; long products (P·V with k = keys) would otherwise stream the whole panel
/// from L2 once per row tile. Passes run over all column panels, each first row tile
/// prefetching the next panel.
#define KC 128

AVX512 void unilip_gemm_avx512(long m, long n, long k, float alpha,
                               const float *a, long ars, long acs,
                               const float *b, long ldb,
                               float beta, float *c, long ldc) {
    long p0 = 0;
    do {  /* at least once, so k = 0 still scales C by beta */
        long kc = k - p0 < KC ? k - p0 : KC;
        float bt = p0 == 0 ? beta : 1.0f;
        const float *ap = a + p0 * acs;
        for (long j = 0; j < n; j += 32) {
            long w = n - j < 32 ? n - j : 32;
            __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
            __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
            const float *bp = b + p0 * ldb + j;
            if (w > 16) panel(2, m0, m1, m, kc, alpha, ap, ars, acs, bp, ldb, bt, c + j, ldc);
            else panel(1, m0, 0, m, kc, alpha, ap, ars, acs, bp, ldb, bt, c + j, ldc);
        }
        p0 += kc;
    } while (p0 < k);
}

static INLINE AVX512 __mmask16 tail_mask(long left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

AVX512 float unilip_max_avx512(const float *x, long n) {
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    for (long j = 0; j < n; j += 16) {
        __mmask16 mk = tail_mask(n - j);
        m = _mm512_mask_max_ps(m, mk, m, _mm512_maskz_loadu_ps(mk, x + j));
    }
    return _mm512_reduce_max_ps(m);
}

/// e^x for x ≤ 88, Cephes-style: x = n·ln2 + r, e^r by a degree-6 polynomial, 2^n by exponent bits.
static INLINE AVX512 __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-88.0f);
    __m512 xc = _mm512_max_ps(lo, x);  /* operand order keeps NaN */
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 shifted = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504f), magic);
    __m512 nn = _mm512_sub_ps(shifted, magic);
    __m512 r = _mm512_fmadd_ps(nn, _mm512_set1_ps(-0.693359375f), xc);
    r = _mm512_fmadd_ps(nn, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 y = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i bits = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
    __m512 pow2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(y, pow2);
}

AVX512 float unilip_exp_shift_avx512(float *x, long n, float shift) {
    const __m512 s = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (long j = 0; j < n; j += 16) {
        __mmask16 mk = tail_mask(n - j);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + j), s));
        _mm512_mask_storeu_ps(x + j, mk, e);
        sum = _mm512_mask_add_ps(sum, mk, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/// One mr × (16·nv) tile of a tap sum: all taps accumulate in registers before one store.
static INLINE AVX512 void conv_tile(const int mr, const int nv, int prefetch, __mmask16 m0, __mmask16 m1,
                                    long k, long taps, const float *a, long tapStride, long lda,
                                    const float *b, long ldb, const long *offsets, float *c, long ldc) {
    __m512 acc[8][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    for (long t = 0; t < taps; t++) {
        const float *ar[8];
        for (int r = 0; r < mr; r++) ar[r] = a + t * tapStride + r * lda;
        const float *bp = b + offsets[t];
        for (long p = 0; p < k; p++) {
            __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
            __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, bp + 16) : _mm512_setzero_ps();
            if (prefetch) {
                _mm_prefetch((const char *)(bp + 32), _MM_HINT_T0);
                _mm_prefetch((const char *)(bp + 48), _MM_HINT_T0);
            }
            for (int r = 0; r < mr; r++) {
                __m512 x = _mm512_set1_ps(ar[r][p]);
                acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                if (nv > 1) acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
            }
            bp += ldb;
        }
    }
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        if (nv > 1) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

static INLINE AVX512 void conv_panel(const int nv, __mmask16 m0, __mmask16 m1, long m, long k, long taps,
                                     const float *a, long tapStride, long lda, const float *b, long ldb,
                                     const long *offsets, float *c, long ldc) {
    long i = 0;
    if (m >= 8) {
        conv_tile(8, nv, 1, m0, m1, k, taps, a, tapStride, lda, b, ldb, offsets, c, ldc);
        i = 8;
    }
    for (; i + 8 <= m; i += 8)
        conv_tile(8, nv, 0, m0, m1, k, taps, a + i * lda, tapStride, lda, b, ldb, offsets, c + i * ldc, ldc);
    for (; i + 4 <= m; i += 4)
        conv_tile(4, nv, 0, m0, m1, k, taps, a + i * lda, tapStride, lda, b, ldb, offsets, c + i * ldc, ldc);
    for (; i < m; i++)
        conv_tile(1, nv, 0, m0, m1, k, taps, a + i * lda, tapStride, lda, b, ldb, offsets, c + i * ldc, ldc);
}

AVX512 void unilip_conv_avx512(long m, long n, long k, long taps,
                               const float *a, long tapStride, long lda,
                               const float *b, long ldb, const long *offsets,
                               float *c, long ldc) {
    for (long j = 0; j < n; j += 32) {
        long w = n - j < 32 ? n - j : 32;
        __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
        __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0;
        if (w > 16) conv_panel(2, m0, m1, m, k, taps, a, tapStride, lda, b + j, ldb, offsets, c + j, ldc);
        else conv_panel(1, m0, 0, m, k, taps, a, tapStride, lda, b + j, ldb, offsets, c + j, ldc);
    }
}

/// erf(|x|/√2) by Abramowitz & Stegun 7.1.26 (the SIMD8 `VectorMath.erf`), and e^(−x²/2),
/// which is both erf's exponential and the Gaussian density's: GELU's backward needs it once.
static INLINE AVX512 __m512 gelu_erf_abs(__m512 x, __m512 *gauss) {
    const __m512 ax = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    const __m512 a = _mm512_min_ps(_mm512_set1_ps(10.0f), ax);  /* operand order keeps NaN */
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), a, one));
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.061405429f), t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
    *gauss = e;
    return _mm512_fnmadd_ps(_mm512_mul_ps(p, t), e, one);
}

/// Φ(x) = ½(1 + sign(x)·erf(|x|/√2)).
static INLINE AVX512 __m512 gelu_cdf(__m512 x, __m512 *gauss) {
    __m512 erfAbs = gelu_erf_abs(x, gauss);
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 erf = _mm512_mask_sub_ps(erfAbs, negative, _mm512_setzero_ps(), erfAbs);
    return _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

AVX512 void unilip_gelu_avx512(const float *x, float *y, long n) {
    for (long j = 0; j < n; j += 16) {
        __mmask16 mk = tail_mask(n - j);
        __m512 v = _mm512_maskz_loadu_ps(mk, x + j), gauss;
        _mm512_mask_storeu_ps(y + j, mk, _mm512_mul_ps(v, gelu_cdf(v, &gauss)));
    }
}

AVX512 void unilip_gelu_backward_avx512(const float *g, const float *x, float *gx, long n) {
    const __m512 invSqrt2Pi = _mm512_set1_ps(0.39894228040143268f);
    for (long j = 0; j < n; j += 16) {
        __mmask16 mk = tail_mask(n - j);
        __m512 v = _mm512_maskz_loadu_ps(mk, x + j), gauss;
        __m512 cdf = gelu_cdf(v, &gauss);
        __m512 d = _mm512_fmadd_ps(v, _mm512_mul_ps(invSqrt2Pi, gauss), cdf);
        _mm512_mask_storeu_ps(gx + j, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, g + j), d));
    }
}
