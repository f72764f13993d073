/*
 * alert.h: spend and health events POSTed as JSON to [alert] webhooks,
 * once per period across all processes, delivered by a detached process
 * so that no request ever waits for a webhook.
 */
#ifndef LLMGATE_ALERT_H
#define LLMGATE_ALERT_H

#include "config.h"

struct json_object;

/* The config alerts are read from; set once at start (NULL: none). */
void	alert_setup(const struct config *);
/* Whether any [alert] wants event e: callers skip building a payload. */
int	alert_wanted(enum alert_event);
/*
 * Event e about subject (a key, an agent, a deployment) happened. For
 * each [alert] that wants it and has not sent it about subject in this
 * period: claim the period (an O_EXCL file in data_dir/alerts), spool the
 * payload (the members of fields, which this takes, plus event, time,
 * alert, subject) and start a delivery process. Never blocks on the
 * network.
 */
void	alert_emit(enum alert_event, const char *, struct json_object *);
/* balance_low: as alert_emit, to the alerts whose balance_below is above balance. */
void	alert_balance_low(const char *, struct json_object *, money_t);
/*
 * The delivery process (llmgate --deliver-alert FILE): POST the spooled
 * payload to its webhook with retries and backoff, holding an flock on
 * the file; it is removed when delivered, renamed FILE.failed when every
 * attempt failed. Then the spool files no process holds (orphans of a
 * killed deliverer) are delivered the same way. Returns the exit status.
 */
int	alert_deliver(const struct config *, const char *);

#endif
