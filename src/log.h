/* log.h: one-line log messages to stderr (the web server's error log). */
#ifndef LLMGATE_LOG_H
#define LLMGATE_LOG_H

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG__MAX
};

extern enum log_level log_threshold;
/* log_format = json: every line one JSON object (time, level, pid, message). */
extern int log_json;

int	log_level_parse(const char *, enum log_level *);
void	log_msg(enum log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Room for log_value() of a field of n bytes: quotes, escapes, NUL. */
#define LOG_VALUE_SIZE(n)	((n) * 4 + 3)
const char *log_value(char *, size_t, const char *);

/*
 * The extra members of one JSON log line, built on the caller's stack:
 * "name":value pairs with a comma before each, cut whole when full.
 */
struct log_fields {
	char	 buf[8192];
	size_t	 n;
};
void	log_fields_init(struct log_fields *);
void	log_field_str(struct log_fields *, const char *, const char *);
void	log_field_int(struct log_fields *, const char *, long long);
/* A line with fields (NULL: none): in text format fields are left out. */
void	log_msg_fields(enum log_level, const struct log_fields *,
	    const char *, ...) __attribute__((format(printf, 3, 4)));
/* s as a JSON string with quotes: invalid UTF-8 as U+FFFD; returns the length or -1 when len is short. */
int	log_json_string(char *, size_t, const char *);

#define log_error(...)	log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
