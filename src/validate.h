/* validate.h: strict JSON parsing and table-driven checks of request fields. */
#ifndef LLMGATE_VALIDATE_H
#define LLMGATE_VALIDATE_H

#include <stddef.h>

#include <json-c/json.h>

/* Type masks for field rules. */
#define J_NULL		0x01u
#define J_BOOL		0x02u
#define J_INT		0x04u
#define J_DOUBLE	0x08u
#define J_STRING	0x10u
#define J_ARRAY		0x20u
#define J_OBJECT	0x40u
#define J_NUMBER	(J_INT | J_DOUBLE)

/*
 * One field of an object: allowed types, whether it must be present, and
 * bounds (numeric value, string length or array length; min > max means
 * unbounded), applied to the types in bounded (0: to every type).
 */
struct field_rule {
	const char	*name;
	unsigned	 types;
	int		 required;
	double		 min, max;
	unsigned	 bounded;
};

/* Where validation failed and why, for a 400 that names the field. */
struct verr {
	char	 param[128];
	char	 message[512];
};

struct json_object *json_parse_strict(const char *, size_t, int,
		    struct verr *);
int	validate_fields(struct json_object *, const struct field_rule *,
	    size_t, const char *, struct verr *);
int	validate_chat(struct json_object *, struct verr *);
int	validate_model_name(const char *);
const char *json_type_label(struct json_object *);

#endif
