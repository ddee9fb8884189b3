/*
 * `kinfer-operator metrics --framework vllm|triton|tgi -f PAGE [-f PAGE2
 * --interval 15s] [-o json]`: the value the autoscaler would use for every
 * metric type from saved /metrics pages, or why it has none. What a user
 * runs when the autoscaler says a metric is missing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

int metricscmd_main(int argc, char **argv, int argi);

/*
 * The command on pages already in memory (for the tests): names[k] is what
 * errors call page k. Returns the exit code: 0 parsed, 1 a page did not
 * (FILE:LINE on err), 2 a bad framework.
 */
int metricscmd_run(const char *framework, const char *const *names, const char *const *bodies,
		   const size_t *lens, size_t n_pages, long interval_ms, bool json, FILE *out,
		   FILE *err);
