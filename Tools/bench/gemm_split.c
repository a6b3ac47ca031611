/* OpenBLAS on two threads against two single-threaded OpenBLAS calls run side by side (the split
 * `BLAS.sgemm` makes), on the GEMMs of the ViT-block benchmark and of the tiny models' training
 * steps. Best of 40 runs per product; results to stdout.
 *
 *   cc -O2 Tools/bench/gemm_split.c -o /tmp/gemm_split -lopenblas -lpthread
 *   OPENBLAS_CORETYPE=SkylakeX OPENBLAS_THREAD_TIMEOUT=8 /tmp/gemm_split   # or Haswell on AVX2 CPUs
 *
 * Split: C's rows in two halves for a plain product; k in two halves for A transposed (the
 * second half into a scratch block added to C afterwards). Thread creation is inside the timing.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern void openblas_set_num_threads(int);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct { int ta, tb, m, n, k; const float *a; int lda; const float *b; int ldb; float beta; float *c; int ldc; } gemm_t;

static void gemm(gemm_t *g) {
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                g->m, g->n, g->k, 1, g->a, g->lda, g->b, g->ldb, g->beta, g->c, g->ldc);
}

static void *run(void *p) { gemm(p); return 0; }

static float *scratch;

static void split(gemm_t g) {
    openblas_set_num_threads(1);
    pthread_t th;
    gemm_t g1 = g, g2 = g;
    if (g.ta) {
        int h = g.k / 2;
        g1.k = h; g2.k = g.k - h;
        g2.a = g.a + (long)h * g.lda; g2.b = g.b + (long)h * g.ldb;
        g2.beta = 0; g2.c = scratch; g2.ldc = g.n;
        pthread_create(&th, 0, run, &g2); gemm(&g1); pthread_join(th, 0);
        for (long i = 0; i < g.m; i++)
            for (long j = 0; j < g.n; j++) g.c[i * g.ldc + j] += scratch[i * g.n + j];
    } else {
        int h = g.m / 2;
        g1.m = h; g2.m = g.m - h;
        g2.a = g.a + (long)h * g.lda; g2.c = g.c + (long)h * g.ldc;
        pthread_create(&th, 0, run, &g2); gemm(&g1); pthread_join(th, 0);
    }
    openblas_set_num_threads(2);
}

static float *rnd(long n) {
    float *x = malloc(4 * n);
    for (long i = 0; i < n; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    return x;
}

/* The three products of one linear layer y = x·Wᵀ (+ b) over `rows` tokens, `in` → `out`:
 * forward (beta 1 when a bias is written into C first), input gradient, weight gradient. */
static void layer(gemm_t *g, int rows, int in, int out, int bias) {
    float *x = rnd((long)rows * in), *w = rnd((long)out * in), *gy = rnd((long)rows * out);
    float *y = rnd((long)rows * out), *gx = rnd((long)rows * in), *gw = rnd((long)out * in);
    g[0] = (gemm_t){0, 1, rows, out, in, x, in, w, in, bias ? 1.0f : 0.0f, y, out};
    g[1] = (gemm_t){0, 0, rows, in, out, gy, out, w, in, 0, gx, in};
    g[2] = (gemm_t){1, 0, out, in, rows, gy, out, x, in, 0, gw, in};
}

static void report(const char *title, gemm_t *g, int count) {
    double one = 0, two = 0;
    printf("%s\n", title);
    for (int i = 0; i < count; i++) {
        double b1 = 1e9, b2 = 1e9;
        for (int r = 0; r < 40; r++) {
            double t = now(); gemm(&g[i]); t = now() - t; if (t < b1) b1 = t;
            t = now(); split(g[i]); t = now() - t; if (t < b2) b2 = t;
        }
        double flops = 2.0 * g[i].m * g[i].n * g[i].k;
        printf("  %c%c m=%-5d n=%-5d k=%-5d beta=%g: OpenBLAS 2 threads %6.3f ms (%3.0f GFLOP/s), split %6.3f ms (%3.0f GFLOP/s)\n",
               g[i].ta ? 'T' : 'N', g[i].tb ? 'T' : 'N', g[i].m, g[i].n, g[i].k, g[i].beta,
               b1 * 1e3, flops / b1 / 1e9, b2 * 1e3, flops / b2 / 1e9);
        one += b1; two += b2;
    }
    printf("  total: OpenBLAS 2 threads %.2f ms, split %.2f ms\n", one * 1e3, two * 1e3);
}

int main(void) {
    scratch = malloc(4L * 4096 * 4096);
    openblas_set_num_threads(2);
    gemm_t vit[12], tiny[12];
    /* bench core (a): 2,048 tokens, width 256, MLP 1024, every linear with a bias. */
    layer(vit + 0, 2048, 256, 768, 1); layer(vit + 3, 2048, 256, 256, 1);
    layer(vit + 6, 2048, 256, 1024, 1); layer(vit + 9, 2048, 1024, 256, 1);
    /* The tiny InternViT in CLIP pretraining: 64 images × 65 tokens, width 128, MLP 512; q, k
     * and v are three products without bias. */
    layer(tiny + 0, 4160, 128, 128, 0); layer(tiny + 3, 4160, 128, 128, 1);
    layer(tiny + 6, 4160, 128, 512, 1); layer(tiny + 9, 4160, 512, 128, 1);
    report("ViT block (bench core a)", vit, 12);
    report("tiny InternViT layer (CLIP stage)", tiny, 12);
    return 0;
}
