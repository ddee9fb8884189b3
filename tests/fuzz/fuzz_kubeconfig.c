/*
 * libFuzzer target: kubeconfig YAML (libyaml through yamljson), with the
 * current context and a named one. Any bytes: an error or a config, never
 * a crash or a leak.
 */
#include "kubeconfig.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_auth *a = NULL;
	char err[512];
	if (kubeconfig_parse((const char *)data, size, "/tmp/fuzz/config", NULL, &a, err,
			     sizeof(err)) == 0)
		kube_auth_free(a);
	a = NULL;
	if (kubeconfig_parse((const char *)data, size, "/tmp/fuzz/config", "x", &a, err,
			     sizeof(err)) == 0)
		kube_auth_free(a);
	return 0;
}
