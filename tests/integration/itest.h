/* Shared by integration groups: the cluster the fixture started. */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kube.h"

#define GROUP(name) int itests_##name(void);
#include "test-list.h"
#undef GROUP

/* A client for the fixture's cluster, from its admin kubeconfig. */
struct kube_client *itest_client(double qps);
/* Run kubectl against the fixture's cluster; returns its stdout (free it)
 * and exit status in *ret_status. */
char *itest_kubectl(int *ret_status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A fresh namespace with a unique name, created on the server. */
void itest_namespace(struct kube_client *c, const char *prefix, char *buf, size_t len);
/* Delete it in the background (what a group's teardown does). */
void itest_namespace_delete(struct kube_client *c, const char *ns);
