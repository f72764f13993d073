/* provider-yandex.c: the yandex protocol (in progress: not yet implemented). */
#include "provider.h"

const struct provider_ops provider_yandex = {
	.type = "yandex",
};
