/*
 * bare-responder.c: the benchmark's baseline. A plain libfcgi responder
 * with the same thread pool shape as llmgate that reads the request body
 * and answers a fixed chat completion: the ceiling of what any FastCGI
 * program can do behind the same web server.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

static const char reply[] =
    "Status: 200 OK\r\nContent-Type: application/json\r\n\r\n"
    "{\"id\":\"chatcmpl-bare\",\"object\":\"chat.completion\",\"created\":0,"
    "\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
    "\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,"
    "\"total_tokens\":6}}\n";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *
worker(void *arg)
{
	FCGX_Request	 r;
	char		 buf[16384];
	int		 rc;

	(void)arg;
	FCGX_InitRequest(&r, 0, 0);
	for (;;) {
		pthread_mutex_lock(&lock);
		rc = FCGX_Accept_r(&r);
		pthread_mutex_unlock(&lock);
		if (rc < 0)
			break;
		while (FCGX_GetStr(buf, sizeof(buf), r.in) > 0)
			;
		FCGX_PutStr(reply, sizeof(reply) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	pthread_t	 t[64];
	int		 i, n = 1;

	if (argc == 3 && strcmp(argv[1], "--threads") == 0)
		n = atoi(argv[2]);
	if (n < 1 || n > 64)
		n = 1;
	FCGX_Init();
	for (i = 0; i < n; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	return 0;
}
