#include <cblas.h>
// Kernel re-detection of DYNAMIC_ARCH builds (used to leave OpenBLAS's generic fallback).
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);
