/* route-images.c: POST /v1/images/generations (in progress: not yet implemented). */
#include "route.h"

int
route_images(struct request *r, const char *arg)
{
	return http_error(r, 501, "invalid_request_error", "not_implemented",
	    NULL, "image generation is not implemented yet");
}
