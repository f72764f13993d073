/*
 * unit-policy.c: [policy] sections as loaded (actions, the pii shorthand,
 * length's default, residency words), which policy a principal gets (key
 * > agent > tier > default), the policy step over a chat body (redact in
 * place, block with the status sent), the residency filter of a plan
 * (fallbacks and groups of deployments kept whole), and the guard's
 * fields of a usage row (version 4, older rows still read).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/billing.h"
#include "../src/config.h"
#include "../src/http.h"
#include "../src/plan.h"
#include "../src/policy.h"
#include "../src/usage.h"
#include "tap.h"

static const char ini[] =
    "[gateway]\n"
    "data_dir = /tmp\n"
    "default_policy = base\n"
    "[provider g]\n"
    "base_url = http://127.0.0.1:9/v1\n"
    "api_key = none\n"
    "[provider r]\n"
    "base_url = http://127.0.0.1:9/v1\n"
    "api_key = none\n"
    "residency = ru\n"
    "[provider o]\n"
    "base_url = http://127.0.0.1:9/v1\n"
    "api_key = none\n"
    "residency = local\n"
    "[model chain]\n"
    "provider = g\n"
    "fallback = dep, onp\n"
    "context_fallback = big\n"
    "[model dep]\n"
    "deployment = g dep-g\n"
    "deployment = r dep-r1\n"
    "deployment = r dep-r2 weight=3\n"
    "[model onp]\n"
    "provider = o\n"
    "[model big]\n"
    "provider = r\n"
    "[tier T1]\n"
    "policy = tierpol\n"
    "[tier T3]\n"
    "[agent sales]\n"
    "tier = T1\n"
    "policy = agentpol\n"
    "[agent ops]\n"
    "tier = T1\n"
    "[policy base]\n"
    "email = log\n"
    "[policy tierpol]\n"
    "[policy agentpol]\n"
    "[policy keypol]\n"
    "[policy strict]\n"
    "pii = redact\n"
    "ip = off\n"
    "card = block\n"
    "max_prompt_chars = 100000\n"
    "residency = ru onprem\n"
    "[policy router]\n"
    "card = route\n"
    "route_residency = onprem\n";

static struct config *
load(const char *text, char *err, size_t len)
{
	char		 path[] = "/tmp/unit-policy.XXXXXX";
	struct config	*c;
	int		 fd;

	if ((fd = mkstemp(path)) == -1 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	c = config_load_opts(path, CONFIG_NO_MASTER_KEY, err, len);
	unlink(path);
	return c;
}

/* Run f with its output (an HTTP answer on stdout) thrown away. */
static int
quiet_status(int (*f)(void *), void *arg)
{
	int	 saved, null, rc;

	fflush(stdout);
	if ((saved = dup(1)) == -1 || (null = open("/dev/null", O_WRONLY)) == -1)
		abort();
	dup2(null, 1);
	close(null);
	rc = f(arg);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	return rc;
}

static void
test_load(const struct config *c)
{
	const struct policy_cfg	*s = config_policy(c, "strict");
	const struct policy_cfg	*r = config_policy(c, "router");
	struct strlist		 want;
	char			*v[2];
	char			 err[600];
	struct config		*bad;

	ok(s != NULL && r != NULL, "policies load");
	ok(s->action[DET_EMAIL] == POLICY_REDACT &&
	    s->action[DET_SECRET] == POLICY_REDACT,
	    "pii = redact: every personal-data kind not set on its own");
	ok(s->action[DET_CARD] == POLICY_BLOCK && s->action[DET_IP] ==
	    POLICY_OFF, "a kind's own action wins over pii, in any order");
	ok(s->action[DET_CONFIDENTIAL] == POLICY_OFF &&
	    s->action[DET_INJECTION] == POLICY_OFF, "the rest: off");
	ok(s->action[DET_LENGTH] == POLICY_BLOCK,
	    "length blocks once a maximum is set");
	ok((s->redact_mask & DET_BIT(DET_EMAIL)) && !(s->redact_mask &
	    DET_BIT(DET_CARD)) && (s->scan_mask & DET_BIT(DET_CARD)) &&
	    !(s->scan_mask & DET_BIT(DET_IP)),
	    "masks: redacted kinds apart, off kinds not looked for");
	ok(s->restore == 1 && s->output == REDACT_OUT_OFF &&
	    s->out_mask == DET_PII_MASK && s->injection_threshold == 50,
	    "defaults: restore on, output off over the pii kinds, threshold 50");
	ok(r->action[DET_EMAIL] == POLICY_OFF && r->action[DET_LENGTH] ==
	    POLICY_OFF, "no pii shorthand, no maximum: off");
	v[0] = "ru";
	v[1] = "onprem";
	want.v = v;
	want.n = 2;
	ok(config_residency_ok("ru", &want) && config_residency_ok("local",
	    &want) && config_residency_ok("onprem", &want) &&
	    !config_residency_ok("global", &want) &&
	    !config_residency_ok("eu", &want), "residency: ru onprem, and "
	    "local counts as onprem");
	v[1] = "local";
	ok(config_residency_ok("onprem", &want),
	    "a policy's local admits an onprem provider too");
	want.n = 0;
	ok(config_residency_ok("global", &want), "no list: any residency");

	bad = load("[gateway]\ndata_dir = /tmp\n[policy p]\nemail = maybe\n",
	    err, sizeof(err));
	ok(bad == NULL && strstr(err, ":4: email: unknown action") != NULL,
	    "an unknown action: file:line");
	config_free(bad);
	bad = load("[gateway]\ndata_dir = /tmp\ndefault_tier = T\n[tier T]\npolicy = zz\n"
	    "[policy p]\n", err, sizeof(err));
	ok(bad == NULL && strstr(err, ":5: [tier T] policy: no [policy zz]")
	    != NULL, "a tier naming no policy: the line of its policy key");
	config_free(bad);
	bad = load("[gateway]\ndata_dir = /tmp\n[policy p]\nlength = log\n",
	    err, sizeof(err));
	ok(bad == NULL && strstr(err, "length needs max_prompt_chars") !=
	    NULL, "length without a maximum is refused");
	config_free(bad);
	bad = load("[gateway]\ndata_dir = /tmp\n[policy "
	    "a-name-of-twenty-four-ch]\n", err, sizeof(err));
	ok(bad == NULL && strstr(err, ":3: [policy a-name-of-twenty-four-ch]: "
	    "a policy's name has at most 23") != NULL,
	    "a policy's name: 23 characters at most (a usage row holds it)");
	config_free(bad);
	bad = load("[gateway]\ndata_dir = /tmp\n[provider x]\nbase_url = "
	    "http://h/v1\nresidency = Russia!\n", err, sizeof(err));
	ok(bad == NULL && strstr(err, ":5: residency: \"Russia!\" is not a "
	    "residency") != NULL, "a provider's residency is a word");
	config_free(bad);
	bad = load("[gateway]\ndata_dir = /tmp\n[provider x]\nbase_url = "
	    "http://h/v1\nresidency = RU\n", err, sizeof(err));
	ok(bad != NULL && strcmp(bad->providers[0].residency, "ru") == 0,
	    "residency RU is ru");
	config_free(bad);
}

static void
test_resolve(const struct config *c)
{
	struct principal	 p;
	enum policy_from	 from;
	const struct policy_cfg	*pol;

	memset(&p, 0, sizeof(p));
	snprintf(p.key.policy, sizeof(p.key.policy), "keypol");
	snprintf(p.agent, sizeof(p.agent), "sales");
	p.tier_cfg = config_tier(c, "T1");
	pol = policy_resolve(c, &p, &from);
	ok(pol != NULL && strcmp(pol->name, "keypol") == 0 &&
	    from == POLICY_FROM_KEY, "the key's policy first");
	p.key.policy[0] = '\0';
	pol = policy_resolve(c, &p, &from);
	ok(pol != NULL && strcmp(pol->name, "agentpol") == 0 &&
	    from == POLICY_FROM_AGENT, "then its agent's");
	snprintf(p.agent, sizeof(p.agent), "ops");
	pol = policy_resolve(c, &p, &from);
	ok(pol != NULL && strcmp(pol->name, "tierpol") == 0 &&
	    from == POLICY_FROM_TIER, "then its tier's");
	p.tier_cfg = config_tier(c, "T3");
	pol = policy_resolve(c, &p, &from);
	ok(pol != NULL && strcmp(pol->name, "base") == 0 &&
	    from == POLICY_FROM_DEFAULT, "then default_policy");
	snprintf(p.key.policy, sizeof(p.key.policy), "gone");
	pol = policy_resolve(c, &p, &from);
	ok(pol == NULL && from == POLICY_FROM_KEY,
	    "a key's policy not configured: none, from the key (refused)");
}

struct step {
	struct request		*r;
	struct json_object	*req;
	struct guard		*g;
	struct plan		*pl;
};

static int
do_request(void *arg)
{
	struct step	*s = arg;

	return policy_request(s->r, POLICY_CHAT, s->req, s->g);
}

static int
do_plan(void *arg)
{
	struct step	*s = arg;

	return policy_plan(s->r, s->g, s->pl);
}

static const char *
names(const struct plan *pl, char *buf, size_t len)
{
	size_t	 i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < pl->n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s:%zu/%zu",
		    i ? " " : "", pl->c[i].upstream, pl->c[i].group,
		    pl->c[i].group_n);
	return buf;
}

static void
test_step(const struct config *c)
{
	struct request		 r;
	struct principal	 p;
	struct guard		 g;
	struct plan		 pl;
	struct step		 s = { &r, NULL, &g, &pl };
	struct json_object	*req;
	const char		*out;
	char			 buf[512];
	int			 rc;

	memset(&p, 0, sizeof(p));
	p.key.id = 7;
	snprintf(p.key.policy, sizeof(p.key.policy), "strict");
	http_request_init(&r, c, NULL, NULL);
	r.who = &p;

	req = json_tokener_parse("{\"model\":\"chain\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"write to ivan.petrov@example.ru "
	    "please\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"or olga@example.org\"}]}]}");
	s.req = req;
	rc = quiet_status(do_request, &s);
	out = json_object_to_json_string(req);
	ok(rc == 0 && strstr(out, "example.ru") == NULL &&
	    strstr(out, "olga@") == NULL && strstr(out, "[EMAIL_1]") != NULL &&
	    strstr(out, "[EMAIL_2]") != NULL,
	    "redact: the e-mails replaced in place, string and text part");
	ok(g.found == DET_BIT(DET_EMAIL) && g.acted == 1u << POLICY_REDACT,
	    "the guard: found email, acted redact");

	/* Residency ru onprem over chain: g left out, dep's ru members kept. */
	ok(plan_resolve(c, "chain", &pl) == PLAN_OK && pl.n == 6,
	    "the plan of chain: 6 candidates");
	rc = quiet_status(do_plan, &s);
	ok(rc == 0 && strcmp(names(&pl, buf, sizeof(buf)),
	    "dep-r1:0/2 dep-r2:0/2 onp:0/0 big:0/0") == 0,
	    "residency: the global primary and deployment out, the ru group "
	    "kept whole, onprem and the context fallback kept");
	printf("# %s\n", buf);
	guard_free(&g);
	json_object_put(req);

	req = json_tokener_parse("{\"model\":\"chain\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"card 4111 1111 1111 1111\"}]}");
	s.req = req;
	rc = quiet_status(do_request, &s);
	ok(rc == 400 && r.status == 400 && (g.acted & 1u << POLICY_BLOCK) &&
	    (g.found & DET_BIT(DET_CARD)), "block: 400 sent, the card found");
	guard_free(&g);
	json_object_put(req);

	/* route: a flagged request keeps only the onprem candidate. */
	http_request_free(&r);
	http_request_init(&r, c, NULL, NULL);
	r.who = &p;
	snprintf(p.key.policy, sizeof(p.key.policy), "router");
	req = json_tokener_parse("{\"model\":\"chain\",\"messages\":["
	    "{\"role\":\"user\",\"content\":\"card 4111 1111 1111 1111\"}]}");
	s.req = req;
	rc = quiet_status(do_request, &s);
	ok(rc == 0 && (g.acted & 1u << POLICY_ROUTE), "route: acted route");
	plan_resolve(c, "chain", &pl);
	rc = quiet_status(do_plan, &s);
	ok(rc == 0 && strcmp(names(&pl, buf, sizeof(buf)), "onp:0/0") == 0,
	    "route: only the onprem candidate left");
	plan_resolve(c, "big", &pl);
	rc = quiet_status(do_plan, &s);
	ok(rc == 403 && r.status == 403, "route: no onprem candidate: 403");
	guard_free(&g);
	json_object_put(req);
	http_request_free(&r);
}

static void
test_row(void)
{
	struct usage_row	 u, back;
	struct json_object	*o;
	unsigned char		 raw[sizeof(u)];

	memset(&u, 0, sizeof(u));
	u.version = USAGE_VERSION;
	u.id = 9;
	u.time_us = 1700000000000000LL;
	snprintf(u.policy, sizeof(u.policy), "pd-ru");
	u.guard_found = DET_BIT(DET_EMAIL) | DET_BIT(DET_CARD);
	USAGE_GUARD_SET(&u, DET_EMAIL, POLICY_LOG);
	USAGE_GUARD_SET(&u, DET_CARD, POLICY_BLOCK);
	u.guard_acted = 1u << POLICY_LOG | 1u << POLICY_BLOCK;
	u.guard_out_found = DET_BIT(DET_PHONE);
	u.guard_out_acted = 1u << POLICY_REDACT;
	u.injection = 12;
	o = usage_to_json(&u);
	ok(strcmp(json_object_get_string(json_object_object_get(o,
	    "guard_actions")), "email:log card:block") == 0,
	    "the row as JSON: each kind found with its action");
	ok(usage_from_json(o, &back) == 0 && strcmp(back.policy, "pd-ru") ==
	    0 && back.guard_found == u.guard_found && back.guard_acted ==
	    u.guard_acted && USAGE_GUARD_ACTION(&back, DET_CARD) == POLICY_BLOCK &&
	    back.guard_actions == u.guard_actions &&
	    back.guard_out_found == u.guard_out_found &&
	    back.guard_out_acted == u.guard_out_acted && back.injection == 12,
	    "and back (a fallback line replays whole)");
	json_object_put(o);
	memcpy(raw, &u, sizeof(u));
	raw[0] = 3;
	ok(usage_rec(raw, USAGE_V3_SIZE, &back) == 0 && back.policy[0] ==
	    '\0' && back.guard_found == 0 && back.version == USAGE_VERSION,
	    "a version 3 row reads, without a policy");
	raw[0] = USAGE_VERSION;
	ok(usage_rec(raw, sizeof(u), &back) == 0 && back.guard_found ==
	    u.guard_found, "a version 4 row reads");
}

int
main(void)
{
	struct config	*c;
	char		 err[600];

	if ((c = load(ini, err, sizeof(err))) == NULL) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	test_load(c);
	test_resolve(c);
	test_step(c);
	test_row();
	config_free(c);
	return tap_done();
}
