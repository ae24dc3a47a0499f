/*
 * test_plan_units_c.c: stand-alone C check of how the compiled plan cuts a
 * shared conv op over its threads (fc_plan_conv_units, plan.h). For batches
 * 1..70, 1..8 threads, 1..40 channel blocks and chunks 0..100 images:
 *   - kp is at least 1 and at most the blocks there are;
 *   - whole images (kp == 1): the step is at least 1 and at most the chunk
 *     (when the chunk is set), and with several threads the batch gives at
 *     least min(N, nth) claims, so every thread can find work (a step of the
 *     whole chunk at a batch of 4 or 8 had left the second of 2 threads idle);
 *   - parts of images (kp > 1): the step is 1;
 *   - with one thread, the chunk is the step (capped by the batch), as before.
 * Built and run by tools/ctests.sh; by hand from the repository root:
 *   gcc -std=c99 -O1 -g -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_plan_units_c.c \
 *       csrc/[a-z]*.c -o /tmp/tpu -lm && /tmp/tpu
 */
#include <stdio.h>
#include "fastconv.h"
#include "plan.h"

#include "fc_check.h"

int main(void)
{
    for (int64_t N = 1; N <= 70; N++)
        for (int nth = 1; nth <= 8; nth++)
            for (int64_t nblk = 1; nblk <= 40; nblk += 3)
                for (int64_t chunk = 0; chunk <= 100; chunk += 7) {
                    int64_t kp = -1, step = -1;
                    fc_plan_conv_units(N, nblk, chunk, nth, &kp, &step);
                    CHECK(kp >= 1 && kp <= nblk, "N %lld nth %d nblk %lld: kp %lld", (long long)N,
                          nth, (long long)nblk, (long long)kp);
                    CHECK(step >= 1, "step %lld", (long long)step);
                    if (kp > 1) {
                        CHECK(step == 1, "parts of images one at a time, step %lld",
                              (long long)step);
                        continue;
                    }
                    if (chunk > 0)
                        CHECK(step <= chunk, "step %lld above the chunk %lld", (long long)step,
                              (long long)chunk);
                    const int64_t claims = (N + step - 1) / step;
                    const int64_t want = N < nth ? N : nth;
                    CHECK(claims >= want,
                          "N %lld nth %d chunk %lld: step %lld gives %lld claims for %lld threads",
                          (long long)N, nth, (long long)chunk, (long long)step,
                          (long long)claims, (long long)want);
                    if (nth == 1) {
                        const int64_t c = chunk > 0 ? chunk : 1;
                        CHECK(step == (c < N ? c : N), "one thread: step %lld, chunk %lld",
                              (long long)step, (long long)chunk);
                    }
                }
    /* the figures of plan.h's comment, on 2 threads */
    int64_t kp, step;
    fc_plan_conv_units(1, 40, 8, 2, &kp, &step);
    CHECK(kp == 4 && step == 1, "batch 1: 4 parts, got %lld", (long long)kp);
    fc_plan_conv_units(3, 40, 8, 2, &kp, &step);
    CHECK(kp == 4, "batch 3: 4 parts per image, got %lld", (long long)kp);
    fc_plan_conv_units(8, 2, 8, 2, &kp, &step);
    CHECK(kp == 1 && step == 2, "batch 8, chunk 8: whole images 2 at a time, got kp %lld step %lld",
          (long long)kp, (long long)step);
    fc_plan_conv_units(64, 2, 81, 2, &kp, &step);
    CHECK(kp == 1 && step == 16, "batch 64, chunk 81: 16 at a time, got %lld", (long long)step);
    printf("test_plan_units_c: %d checks, %d failures\n", n_check, n_fail);
    return n_fail != 0;
}
