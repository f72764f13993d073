/* provider-gigachat.c: the gigachat protocol (in progress: not yet implemented). */
#include "provider.h"

const struct provider_ops provider_gigachat = {
	.type = "gigachat",
};
