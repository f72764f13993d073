/* route-embeddings.c: POST /v1/embeddings (in progress: not yet implemented). */
#include "route.h"

int
route_embeddings(struct request *r, const char *arg)
{
	return http_error(r, 501, "invalid_request_error", "not_implemented",
	    NULL, "embeddings are not implemented yet");
}
