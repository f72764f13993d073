/* provider.h: the provider_ops vtable each wire protocol fills, and shared helpers. */
#ifndef LLMGATE_PROVIDER_H
#define LLMGATE_PROVIDER_H

#include <stdint.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "breaker.h"
#include "buf.h"
#include "config.h"
#include "plan.h"
#include "sse.h"

#define STREAM_BLOCKS_MAX	64
#define PROVIDER_JSON_DEPTH	64

/* Token counts of one response, as the upstream reported them. */
struct usage {
	int64_t	 prompt;
	int64_t	 completion;
	int64_t	 cached;	/* of prompt: read from the provider's cache */
	int64_t	 cache_write;	/* of prompt: written to it (Anthropic) */
	int	 known;		/* the upstream gave usage */
	int	 cost_known;	/* the upstream priced it (OpenRouter's cost) */
	money_t	 cost;		/* micro-USD, when cost_known */
};

/* The validated client request as every adapter sees it. */
struct chat_in {
	struct json_object	*req;	/* parsed body; the handler owns it */
	int			 stream;
	int			 include_usage;	/* client asked for usage */
	/*
	 * The client's completion limit per choice (0: none). Adapters
	 * never read the request's limit fields: they send
	 * plan_max_tokens(candidate, client_max), what was reserved.
	 */
	int64_t			 client_max;
};

/* An upstream request an adapter builds; freed with provider_call_free(). */
struct provider_call {
	struct buf		 url;
	struct buf		 body;
	struct curl_slist	*headers;
	/* The pool key provider_headers sends (NULL: the provider's api_key). */
	const char		*api_key;
};

/* An upstream error in OpenAI terms. */
struct provider_error {
	char	 message[512];
	char	 type[64];
	char	 code[64];
	char	 param[64];
	long	 status;	/* judge as this HTTP status instead (0: as sent) */
	long	 retry_after;	/* s, from the body (0: none) */
};

/*
 * Translation state of one streamed response. route-chat.c sets the sink;
 * the adapter fills usage, finish and done as events go by.
 */
struct stream_state {
	int		(*emit)(void *, struct json_object *);	/* one chunk */
	void		*ctx;
	const struct candidate *cand;
	int		 include_usage;
	struct usage	 usage;
	char		 finish[32];	/* last finish_reason seen */
	int		 done;		/* the upstream ended the stream */
	int		 failed;	/* an error event arrived */
	struct provider_error err;
	int64_t		 chars;		/* content characters relayed */

	/* Adapter scratch space for protocols with their own event grammar. */
	char		 id[128];	/* the upstream's message id */
	int		 tools;		/* tool calls announced so far */
	int		 block_tool[STREAM_BLOCKS_MAX];	/* block -> tool + 1 */
};

/* The inline part of a base64 data: URL. */
struct image_data {
	const char	*mime;		/* NULL: not a data: URL */
	size_t		 mime_len;
	const char	*data;		/* the base64 text */
};

/* A raw finish reason and what OpenAI calls it. */
struct finish_map {
	const char	*raw;
	const char	*openai;
};

/* How a streamed upstream body is cut into events. */
enum framing {
	FRAMING_SSE,		/* text/event-stream */
	FRAMING_NDJSON,		/* one JSON object a line */
};

/* One wire protocol. Every slot is required unless it says otherwise. */
struct provider_ops {
	const char	*type;
	enum framing	 framing;	/* of streamed responses */

	/*
	 * Build URL, headers and body of a chat call to candidate c. -1 with
	 * err filled when the request cannot be said in this protocol (the
	 * client gets a 400), -1 with err empty when out of memory, -2 when
	 * the provider's credentials (an OAuth token) cannot be had now
	 * (a 502 that is retried and falls back).
	 */
	int		(*chat_request)(const struct candidate *,
			    const struct chat_in *, struct provider_call *,
			    struct provider_error *);

	/*
	 * Translate a 2xx non-streamed body into an OpenAI chat.completion;
	 * the caller owns *out. Returns -1 with err filled when the body is
	 * not what the protocol promises.
	 */
	int		(*chat_response)(const struct candidate *,
			    const char *, size_t, struct json_object **,
			    struct usage *, struct provider_error *);

	/*
	 * Translate one upstream stream event into zero or more OpenAI
	 * chunks through st->emit. Returns 0, or the emit's non-zero value,
	 * or -1 with st->err filled when the event is malformed.
	 */
	int		(*chat_event)(struct stream_state *,
			    const struct sse_event *);

	/* Map a non-2xx upstream body to an OpenAI error. */
	void		(*error)(long, const char *, size_t,
			    struct provider_error *);

	/*
	 * Optional: the upstream answered 401. Return 1 when the adapter
	 * dropped cached credentials (an OAuth token) so that one more try
	 * can succeed; 0 when a retry cannot help.
	 */
	int		(*auth_failed)(const struct provider_cfg *);

	/*
	 * Optional: POST /v1/embeddings. Build the call for a validated
	 * request (embeddings_validate); returns as chat_request. A provider
	 * without this slot is skipped with a 400 unsupported_request.
	 */
	int		(*embeddings_request)(const struct candidate *,
			    struct json_object *, struct provider_call *,
			    struct provider_error *);

	/*
	 * Required with embeddings_request: a 2xx body -> an OpenAI list whose
	 * data[] holds {object, index, embedding} (floats, or a base64 string
	 * the upstream gave) and the upstream's usage in u (u->known 0 when it
	 * gave none). The route names the model, encodes base64 and estimates
	 * missing usage. The caller owns *out; -1 with e filled when the body
	 * is malformed.
	 */
	int		(*embeddings_response)(const struct candidate *,
			    struct json_object *, const char *, size_t,
			    struct json_object **, struct usage *,
			    struct provider_error *);
};

const struct provider_ops *provider_ops_for(enum provider_type);
void	provider_check(struct config *);
void	provider_call_init(struct provider_call *, size_t);
void	provider_call_free(struct provider_call *);
int	provider_url(struct provider_call *, const struct provider_cfg *,
	    const char *);
int	provider_headers(struct provider_call *, const struct provider_cfg *,
	    const char *, const char *);
void	provider_error_openai(long, const char *, size_t,
	    struct provider_error *);
void	provider_error_set(struct provider_error *, const char *,
	    const char *, const char *, ...)
	    __attribute__((format(printf, 4, 5)));
void	provider_redact(char *, size_t, const struct provider_cfg *);
void	provider_error_redact(struct provider_error *,
	    const struct provider_cfg *);
void	provider_error_body(const struct candidate *, long, const char *,
	    size_t, struct provider_error *);
int	provider_chat_event(const struct provider_ops *, struct stream_state *,
	    const struct sse_event *);
int	provider_chat_response(const struct provider_ops *,
	    const struct candidate *, const char *, size_t,
	    struct json_object **, struct usage *, struct provider_error *);
int64_t	provider_json_int(struct json_object *, const char *);
int64_t	provider_json_tokens(struct json_object *, const char *);
/*
 * The client's completion limit per choice in a chat request: the smaller
 * of max_tokens and max_completion_tokens where both are given (null is
 * absent), or 0 when it gives none.
 */
int64_t	provider_client_max(struct json_object *);
const char *provider_json_str(struct json_object *, const char *);
void	provider_usage_openai(struct json_object *, struct usage *);
struct json_object *provider_parse(const char *, size_t);
const char *provider_finish(const struct finish_map *, const char *);
struct json_object *provider_usage_object(const struct usage *);
struct json_object *provider_chunk(const struct stream_state *,
	    struct json_object *, const char *);
int	provider_emit_usage(struct stream_state *);
int	provider_body(struct provider_call *, struct json_object *);
void	provider_content_text(struct json_object *, struct buf *);
int	provider_emit_delta(struct stream_state *, const char *,
	    struct json_object *, const char *);
int	provider_emit_role(struct stream_state *);
int	provider_emit_chunk(struct stream_state *, struct json_object *,
	    const char *);
void	provider_new_id(char *, size_t, const char *);
const char *provider_args_string(struct json_object *);
const char *provider_image_url(struct json_object *, struct image_data *);
void	provider_add_turn(struct json_object *, const char *, const char *,
	    struct json_object *);
int	provider_has_header(const struct provider_cfg *, const char *);
struct json_object *provider_tool_call(const char *, const char *,
	    struct json_object *);

int	provider_openai_forward(const struct candidate *, struct json_object *,
	    const char *, struct provider_call *);

/* provider-keys.c: a provider's pool of API keys. */

/* Breaker slots of pool keys are named this and the key's fingerprint. */
#define PROVIDER_KEY_SLOT	"#key:"

/* The key one attempt sends. */
struct provider_key {
	const struct provider_cfg *provider;
	int			 index;		/* into keys[]; -1: no pool */
	long			 retry_after;	/* none left: s to the first back */
	struct breaker_ticket	 brk;
};

enum provider_key_outcome {
	KEY_OK,			/* the provider accepted it */
	KEY_REFUSED,		/* 401, 403 or quota exhausted: set it aside */
	KEY_NEUTRAL,		/* the attempt said nothing about the key */
};

/* Does p have a pool (more than one key)? */
int	provider_key_pool(const struct provider_cfg *);
/*
 * The key of p's pool for turn (keys[turn % n] first, then the next),
 * skipping the keys in tried (bit i: keys[i], refused in this request)
 * and those set aside: 0 with k set
 * (k->index -1 when p has no pool: its api_key is sent); -1 when every
 * key left is set aside (k->retry_after: s until the first is back).
 */
int	provider_key_pick(const struct config *, const struct provider_cfg *,
	    uint32_t, uint64_t, struct provider_key *);
/* The secret of k, or NULL (no pool). */
const char *provider_key_secret(const struct provider_key *);
/* How k fared (why: the gateway's own short words); once per pick. */
void	provider_key_report(struct provider_key *, enum provider_key_outcome,
	    const char *);
/*
 * The index in p's pool of a breaker slot name, -1 for a key p no longer
 * has, -2 when the slot is not a key's.
 */
int	provider_key_slot(const struct provider_cfg *, const char *);

extern const struct provider_ops provider_openai;
extern const struct provider_ops provider_anthropic;
extern const struct provider_ops provider_gemini;
extern const struct provider_ops provider_gigachat;
extern const struct provider_ops provider_yandex;

#endif
