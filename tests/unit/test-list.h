/* Every cmocka group, one line each: GROUP(name) runs tests_<name>(). */
GROUP(backoff)
GROUP(base64)
GROUP(flags)
GROUP(kube)
GROUP(kubeconfig)
GROUP(log)
GROUP(ratelimit)
GROUP(yamljson)
