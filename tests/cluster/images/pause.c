/*
 * pause: the pod sandbox's process for the real node (tests/cluster), in
 * place of registry.k8s.io/pause, built static from this file. It holds the
 * pod's namespaces, reaps the orphans it inherits as PID 1, and exits on
 * SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGCHLD, &child, NULL);
	if (getpid() != 1)
		fprintf(stderr, "pause: not PID 1, still pausing\n");
	for (;;)
		pause();
	return 0;
}
