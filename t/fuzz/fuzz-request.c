/* fuzz-request.c: libFuzzer target for request bodies (strict JSON + chat checks). */
#include <stddef.h>
#include <stdint.h>

#include "../../src/validate.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object	*o;
	struct verr		 e;

	o = json_parse_strict((const char *)data, size, 64, &e);
	if (o != NULL) {
		(void)validate_chat(o, &e);
		json_object_put(o);
	}
	return 0;
}
