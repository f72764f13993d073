/* config.h: the INI configuration, loaded once into one immutable struct. */
#ifndef LLMGATE_CONFIG_H
#define LLMGATE_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "money.h"

enum provider_type {
	PROVIDER_OPENAI,
	PROVIDER_ANTHROPIC,
	PROVIDER_GEMINI,
	PROVIDER_GIGACHAT,
	PROVIDER_YANDEX,
	PROVIDER__MAX
};

extern const char *const provider_type_names[PROVIDER__MAX];

/* A list of strings read from one key, possibly repeated. */
struct strlist {
	char	**v;
	size_t	  n;
};

struct provider_cfg {
	char			*name;
	enum provider_type	 type;
	char			*base_url;
	char			*api_key_ref;	/* "env:NAME", "file:/path" or NULL */
	char			*api_key;	/* the secret itself, or NULL */
	int			 available;
	char			*unavailable;	/* why not, when !available */
	char			*proxy;
	char			*ca_file;
	char			*strip_prefix;
	char			*residency;
	char			*auth_url;	/* OAuth token endpoint */
	char			*scope;		/* OAuth scope */
	char			*folder;	/* Yandex Cloud folder id */
	char			*auth_scheme;	/* e.g. "Api-Key" or "Bearer" */
	struct strlist		 match;
	struct strlist		 headers;	/* "Name: value" */
	long			 connect_timeout;	/* ms */
	long			 first_byte_timeout;	/* s */
	long			 idle_timeout;		/* s */
	long			 timeout;		/* s, hard cap */
	int			 line;
};

struct model_cfg {
	char			*name;
	char			*provider_name;
	struct provider_cfg	*provider;
	char			*upstream;
	money_t			 input_price;	/* micro-USD per 1M tokens */
	money_t			 output_price;
	money_t			 cached_input_price;
	money_t			 image_price;	/* micro-USD per image */
	struct strlist		 fallback;
	long			 rpm;
	long			 tpm;
	long			 max_tokens;	/* default when the client sends none */
	int			 line;
};

#define RETRY_STATUS_MAX 16

struct retry_cfg {
	long	 attempts;
	long	 backoff_ms;
	long	 backoff_max_ms;
	long	 retry_after_max;	/* s */
	int	 on_status[RETRY_STATUS_MAX];
	size_t	 non_status;
};

struct gateway_cfg {
	char			*data_dir;
	char			*master_key_ref;
	char			*master_key;	/* the secret, or NULL */
	char			*default_provider;
	struct provider_cfg	*default_prov;
	char			*base_path;
	char			*durability;
	char			*log_level;
	long			 max_body;
	long			 max_upstream_body;
	long			 max_json_depth;
	long			 max_sse_event;
	long			 heartbeat;	/* s */
};

struct config {
	char			*path;
	time_t			 mtime;
	struct gateway_cfg	 gw;
	struct retry_cfg	 retry;
	struct provider_cfg	*providers;
	size_t			 nproviders;
	struct model_cfg	*models;
	size_t			 nmodels;
};

/* Load path; on error return NULL and write "file:line: reason" to err. */
struct config	*config_load(const char *path, char *err, size_t errlen);
void		 config_free(struct config *);
struct provider_cfg *config_provider(const struct config *, const char *);
struct model_cfg *config_model(const struct config *, const char *);
int		 config_retry_status(const struct config *, int);
void		 config_print_help(void);

#endif
