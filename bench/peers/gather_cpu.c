// Copy of /work/shared/baselines/gather.c that also reports rows/s by the CPU time of the (single)
// timing thread (Mrows_s_cpu_med, CLOCK_THREAD_CPUTIME_ID): on an oversubscribed shared machine the wall
// clock mostly measures the scheduler. Only meaningful with OMP_NUM_THREADS=1. Kernels are unchanged.
// Random row-gather (embedding-bag sum pooling) bandwidth test.
// gcc -O3 -march=native -fopenmp bench/peers/gather_cpu.c -o gather_cpu
// As a library for the in-process, batch-by-batch interleaved comparison in `Recsys.Benchmarks embag --peer`
// (same kernels, no main): gcc -O3 -march=native -shared -fPIC -DGATHER_LIB bench/peers/gather_cpu.c -o gather.so
// Usage: ./gather MODE D HUGE THREADS_LIST P_LIST PF_LIST [TABLE_GIB] [BAGS_PER_BATCH=16384] [BATCHES=12]
//   (lists are comma-separated; one table allocation is reused for all configs)
//   MODE: f32 (row = D floats) | i8 (row = D uint8 + fp32 scale + fp32 bias, fbgemm-style rowwise)
//   D: 64 or 128; P: pooling factor (rows summed per bag); PF: software prefetch distance in
//   rows (0 = none; prefetches every cache line of the row PF indices ahead in the flat index stream)
//   HUGE: 1 = madvise(MADV_HUGEPAGE) on table (2 MiB THP), 0 = MADV_NOHUGEPAGE (4 KiB pages)
// Indices are uniform random over all rows (worst case, no reuse). Threads: OMP_NUM_THREADS (bags split statically).
// Reports rows/s and useful bytes/s (rows * row_bytes) per batch; median/min/max over batches (first discarded).
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmpd(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

#define PF_ROW(ptr, bytes)                                                 \
  do {                                                                     \
    const char *_p = (const char *)(ptr);                                  \
    for (int _l = 0; _l < (bytes); _l += 64) __builtin_prefetch(_p + _l, 0, 0); \
  } while (0)

// fp32 bag kernel, D a multiple of 16, NV = D/16 vectors
#define F32_KERNEL(NV)                                                                        \
  static void bags_f32_##NV(const float *T, const uint32_t *idx, size_t nidx, int P, int pf, \
                            float *out, int b0, int b1) {                                     \
    const int D = NV * 16;                                                                    \
    for (int b = b0; b < b1; b++) {                                                           \
      __m512 acc[NV];                                                                         \
      for (int v = 0; v < NV; v++) acc[v] = _mm512_setzero_ps();                              \
      const uint32_t *ib = idx + (size_t)b * P;                                               \
      for (int j = 0; j < P; j++) {                                                           \
        if (pf) {                                                                             \
          size_t k = (size_t)b * P + j + pf;                                                  \
          if (k < nidx) PF_ROW(T + (size_t)idx[k] * D, D * 4);                                \
        }                                                                                     \
        const float *r = T + (size_t)ib[j] * D;                                               \
        for (int v = 0; v < NV; v++) acc[v] = _mm512_add_ps(acc[v], _mm512_loadu_ps(r + 16 * v)); \
      }                                                                                       \
      for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + (size_t)b * D + 16 * v, acc[v]);   \
    }                                                                                         \
  }
F32_KERNEL(4)
F32_KERNEL(8)

// int8 rowwise kernel: row = D bytes | float scale | float bias  (row stride D+8)
#define I8_KERNEL(NV)                                                                         \
  static void bags_i8_##NV(const uint8_t *T, const uint32_t *idx, size_t nidx, int P, int pf, \
                           float *out, int b0, int b1) {                                      \
    const int D = NV * 16;                                                                    \
    const size_t RS = D + 8;                                                                  \
    for (int b = b0; b < b1; b++) {                                                           \
      __m512 acc[NV];                                                                         \
      for (int v = 0; v < NV; v++) acc[v] = _mm512_setzero_ps();                              \
      float bsum = 0.f;                                                                       \
      const uint32_t *ib = idx + (size_t)b * P;                                               \
      for (int j = 0; j < P; j++) {                                                           \
        if (pf) {                                                                             \
          size_t k = (size_t)b * P + j + pf;                                                  \
          if (k < nidx) PF_ROW(T + (size_t)idx[k] * RS, D + 8);                               \
        }                                                                                     \
        const uint8_t *r = T + (size_t)ib[j] * RS;                                            \
        float sc, bi;                                                                         \
        memcpy(&sc, r + D, 4);                                                                \
        memcpy(&bi, r + D + 4, 4);                                                            \
        __m512 vs = _mm512_set1_ps(sc);                                                       \
        bsum += bi;                                                                           \
        for (int v = 0; v < NV; v++) {                                                        \
          __m512 q = _mm512_cvtepi32_ps(                                                      \
              _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(r + 16 * v))));          \
          acc[v] = _mm512_fmadd_ps(vs, q, acc[v]);                                            \
        }                                                                                     \
      }                                                                                       \
      __m512 vb = _mm512_set1_ps(bsum);                                                       \
      for (int v = 0; v < NV; v++)                                                            \
        _mm512_storeu_ps(out + (size_t)b * D + 16 * v, _mm512_add_ps(acc[v], vb));            \
    }                                                                                         \
  }
I8_KERNEL(4)
I8_KERNEL(8)

#ifdef GATHER_LIB
// One thread, bags [b0, b1) of P ids each; returns 0, or -1 for a shape the kernels do not cover.
int gather_bags(int i8, int D, const void *T, const uint32_t *idx, size_t nidx, int P, int pf, float *out, int b0, int b1) {
  if (D != 64 && D != 128) return -1;
  if (!i8) {
    if (D == 64) bags_f32_4((const float *)T, idx, nidx, P, pf, out, b0, b1);
    else bags_f32_8((const float *)T, idx, nidx, P, pf, out, b0, b1);
  } else {
    if (D == 64) bags_i8_4((const uint8_t *)T, idx, nidx, P, pf, out, b0, b1);
    else bags_i8_8((const uint8_t *)T, idx, nidx, P, pf, out, b0, b1);
  }
  return 0;
}
#else
static long anon_huge_kb(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "AnonHugePages:", 14)) v = atol(line + 14);
  fclose(f);
  return v;
}

static int parse_list(const char *s, int *v) {
  int n = 0;
  char *dup = strdup(s), *tok = strtok(dup, ",");
  while (tok) { v[n++] = atoi(tok); tok = strtok(0, ","); }
  free(dup);
  return n;
}

// Usage: ./gather MODE D HUGE THREADS_LIST P_LIST PF_LIST [TABLE_GIB] [BAGS] [BATCHES]
int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s f32|i8 D HUGE threads_list P_list PF_list [TABLE_GIB] [BAGS] [BATCHES]\n", argv[0]);
    return 1;
  }
  int i8 = !strcmp(argv[1], "i8");
  int D = atoi(argv[2]), huge = atoi(argv[3]);
  int TH[16], PL[16], PFL[16];
  int nth_l = parse_list(argv[4], TH), np = parse_list(argv[5], PL), npf = parse_list(argv[6], PFL);
  double gib = argc > 7 ? atof(argv[7]) : 4.0;
  int B = argc > 8 ? atoi(argv[8]) : 16384;
  int NB = argc > 9 ? atoi(argv[9]) : 12;
  size_t row_bytes = i8 ? (size_t)D + 8 : (size_t)D * 4;
  size_t tbytes = (size_t)(gib * (1ull << 30));
  size_t N = tbytes / row_bytes;
  tbytes = (N * row_bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  char *T = aligned_alloc(2u << 20, tbytes);
  madvise(T, tbytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  omp_set_num_threads(2);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < tbytes / 4; i++) ((uint32_t *)T)[i] = (uint32_t)(i * 2654435761u) & 0x3f7f7f7f;
  if (i8) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < N; r++) {
      float sc = 0.01f, bi = -0.5f;
      memcpy(T + r * row_bytes + D, &sc, 4);
      memcpy(T + r * row_bytes + D + 4, &bi, 4);
    }
  }
  printf("INFO mode=%s D=%d huge=%d table=%.2fGiB rows=%zu AnonHugePages=%ld kB\n", i8 ? "i8" : "f32", D, huge,
         tbytes / (double)(1ull << 30), N, anon_huge_kb());
  int Pmax = 0;
  for (int i = 0; i < np; i++) if (PL[i] > Pmax) Pmax = PL[i];
  size_t maxn = (size_t)B * Pmax * NB;
  uint32_t *idx = malloc(maxn * sizeof(uint32_t));
  float *out = aligned_alloc(64, (size_t)B * D * sizeof(float));
  double *t = malloc(NB * sizeof(double));
  double *tc = malloc(NB * sizeof(double));
  double chk = 0;
  uint64_t x = 88172645463325252ull;
  for (int ti = 0; ti < nth_l; ti++)
    for (int pi = 0; pi < np; pi++)
      for (int fi = 0; fi < npf; fi++) {
        int nth = TH[ti], P = PL[pi], pf = PFL[fi];
        omp_set_num_threads(nth);
        size_t per_batch = (size_t)B * P;
        for (size_t i = 0; i < per_batch * NB; i++) {  // fresh random indices per config
          x ^= x << 13; x ^= x >> 7; x ^= x << 17;
          idx[i] = (uint32_t)(((unsigned __int128)x * N) >> 64);
        }
        for (int nb = 0; nb < NB; nb++) {
          const uint32_t *ib = idx + per_batch * nb;
          double c0 = cpu_now();
          double t0 = now();
#pragma omp parallel
          {
            int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            int b0 = (int)((long)B * tid / nt), b1 = (int)((long)B * (tid + 1) / nt);
            if (!i8) {
              if (D == 64) bags_f32_4((const float *)T, ib, per_batch, P, pf, out, b0, b1);
              else bags_f32_8((const float *)T, ib, per_batch, P, pf, out, b0, b1);
            } else {
              if (D == 64) bags_i8_4((const uint8_t *)T, ib, per_batch, P, pf, out, b0, b1);
              else bags_i8_8((const uint8_t *)T, ib, per_batch, P, pf, out, b0, b1);
            }
          }
          t[nb] = now() - t0;
          tc[nb] = cpu_now() - c0;
          chk += out[(nb * 7919) % ((size_t)B * D)];
        }
        qsort(t + 1, NB - 1, sizeof(double), cmpd);
        qsort(tc + 1, NB - 1, sizeof(double), cmpd);
        double cmed = tc[1 + (NB - 1) / 2];
        double med = t[1 + (NB - 1) / 2], best = t[1], worst = t[NB - 1];
        double rows = (double)per_batch;
        printf("RESULT mode=%s D=%d rowB=%zu P=%d pf=%d huge=%d threads=%d bags=%d Mrows_s_med=%.2f "
               "Mrows_s_min=%.2f Mrows_s_max=%.2f GBps_med=%.2f ns_per_row_thread=%.2f Mrows_s_cpu_med=%.2f\n",
               i8 ? "i8" : "f32", D, row_bytes, P, pf, huge, nth, B, rows / med / 1e6, rows / worst / 1e6,
               rows / best / 1e6, rows * row_bytes / med / 1e9, med * 1e9 * nth / rows, rows / cmed / 1e6);
        fflush(stdout);
      }
  fprintf(stderr, "chk=%g\n", chk);
  return 0;
}
#endif
