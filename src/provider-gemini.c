/* provider-gemini.c: the gemini protocol (in progress: not yet implemented). */
#include "provider.h"

const struct provider_ops provider_gemini = {
	.type = "gemini",
};
