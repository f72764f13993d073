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

int	log_level_parse(const char *, enum log_level *);
void	log_msg(enum log_level, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/* Room for log_value() of a field of n bytes: quotes, escapes, NUL. */
#define LOG_VALUE_SIZE(n)	((n) * 4 + 3)
const char *log_value(char *, size_t, const char *);

#define log_error(...)	log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
