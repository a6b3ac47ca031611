#include <cblas.h>
// Kernel re-detection of DYNAMIC_ARCH builds (used to leave OpenBLAS's generic fallback).
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);
// Re-reading OPENBLAS_* settings and restarting the worker threads with them.
void openblas_read_env(void);
int blas_thread_shutdown_(void);
