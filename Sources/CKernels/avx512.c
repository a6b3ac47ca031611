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
static INLINE AVX512 void tile(const int mr, const int nv, __mmask16 m0, __mmask16 m1, long k,
                               float alpha, const float *a, long ars, long acs,
                               const float *b, long ldb, float beta, float *c, long ldc) {
    __m512 acc[8][2];
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    const float *ap = a;
    const float *bp = b;
    for (long p = 0; p < k; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bp);
        __m512 b1 = nv > 1 ? _mm512_maskz_loadu_ps(m1, bp + 16) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) {
            __m512 x = _mm512_set1_ps(ap[r * ars]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            if (nv > 1) acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
        ap += acs;
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
    for (; i + 8 <= m; i += 8)
        tile(8, nv, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
    for (; i + 4 <= m; i += 4)
        tile(4, nv, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
    for (; i < m; i++)
        tile(1, nv, m0, m1, k, alpha, a + i * ars, ars, acs, b, ldb, beta, c + i * ldc, ldc);
}

AVX512 void unilip_gemm_avx512(long m, long n, long k, float alpha,
                               const float *a, long ars, long acs,
                               const float *b, long ldb,
                               float beta, float *c, long ldc) {
    for (long j = 0; j < n; j += 32) {
        long w = n - j < 32 ? n - j : 32;
        __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << w) - 1);
        if (w > 16) {
            __mmask16 m1 = w >= 32 ? (__mmask16)0xFFFF : (__mmask16)((1u << (w - 16)) - 1);
            panel(2, m0, m1, m, k, alpha, a, ars, acs, b + j, ldb, beta, c + j, ldc);
        } else {
            panel(1, m0, 0, m, k, alpha, a, ars, acs, b + j, ldb, beta, c + j, ldc);
        }
    }
}
