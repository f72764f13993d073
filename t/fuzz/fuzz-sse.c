/* fuzz-sse.c: libFuzzer target for the SSE parser and the OpenAI stream translation. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/provider.h"

static int
emit(void *ctx, struct json_object *chunk)
{
	(void)ctx;
	(void)json_object_to_json_string(chunk);
	return 0;
}

static int
on_event(void *ctx, const struct sse_event *ev)
{
	struct stream_state	*st = ctx;

	if (!ev->comment)
		(void)provider_openai.chat_event(st, ev);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct provider_cfg	 prov = { .name = "fuzz" };
	struct candidate		 cand;
	struct stream_state		 st;
	struct sse_parser		 p;
	size_t				 half = size / 2;

	memset(&cand, 0, sizeof(cand));
	cand.provider = &prov;
	strcpy(cand.name, "fuzz-model");
	memset(&st, 0, sizeof(st));
	st.emit = emit;
	st.cand = &cand;
	st.include_usage = size & 1;
	sse_init(&p, 4096);
	/* Two feeds so that events split across reads are exercised. */
	if (sse_feed(&p, (const char *)data, half, on_event, &st) == 0 &&
	    sse_feed(&p, (const char *)data + half, size - half, on_event,
	    &st) == 0)
		(void)sse_finish(&p, on_event, &st);
	sse_free(&p);
	return 0;
}
