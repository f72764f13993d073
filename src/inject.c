/*
 * inject.c: the prompt-injection score: weighted word patterns (built in,
 * or configured) and heuristics over UTF-8 text, Russian and English.
 *
 * The text is read as words: runs of letters and digits (Latin, Cyrillic
 * and the other scripts), folded to lower case (ASCII, Latin-1, Cyrillic;
 * "ё" is "е"; fullwidth Latin is ASCII). Everything else separates words,
 * so extra spaces, punctuation, markup and line breaks between words do
 * not matter. Invisible characters (zero-width, bidi controls, soft
 * hyphen, combining marks) inside a word are dropped, so "ig<ZWSP>nore" is
 * "ignore"; Unicode tag characters (U+E0020..E007E) read as the ASCII they
 * hide. Three or more single letters evenly apart ("i g n o r e") read as
 * one word. In a word of both Latin and Cyrillic letters the minority's
 * look-alikes become the majority's ("іgnоrе" with Cyrillic letters is
 * "ignore"); in a word with a digit before a letter the digits read as
 * letters ("1gn0re" is "ignore", "з" for "3" in Cyrillic words); "і" in a
 * Cyrillic word is "и". JSON escapes \n, \t, \r and \uXXXX read as what
 * they stand for. Words are kept to 64 bytes (a longer one matches only
 * prefixes); a pattern spans at most 64 words.
 *
 * Pattern syntax (inject_add; conf/llmgate.ini's injection patterns):
 *
 *   [name:] term term ...	terms separated by spaces; each term is one
 *				word, and the terms follow one another
 *   a|b|c			a term's alternatives
 *   word*			any word that starts with "word" (at least
 *				two letters before the star: "инструкц*")
 *   *  or  *N			between two terms: up to 3 (or N, 1..9)
 *				other words may come between them
 *   ^				first: the first word must start its line
 *				(only blanks and # * > - [ < | = ( ! ` " '
 *				before it)
 *   [name:] "literal"		a byte string, case-insensitive for ASCII,
 *				found anywhere (chat-template tokens)
 *
 * Words of a pattern are folded as the text is, and match whole words of
 * the text (a prefix only with the star). A match tries the gaps' choices
 * (backtracking) within 64 words read. name (letters, digits, - and _, up
 * to 23) is what the log shows when the pattern matches; without it the
 * name is "custom". Weights are -1000..1000, not 0: a negative weight
 * lowers the score (an operator's known-benign phrase). At most 512
 * patterns, 8 terms each, 32 alternatives a term; a literal is 1..64 bytes.
 * Examples:
 *
 *   override: ignore|disregard * previous|prior * instruction*|rules
 *   exfiltration: покажи|выведи * свой|свои * промпт*|инструкц*
 *   marker: "<|im_start|>"
 *   ^ system|admin override
 *
 * Score: each pattern adds its weight once however often it matches, and
 * the heuristics add theirs; never below 0. A policy's threshold decides
 * (50 by default: one strong pattern alone, such as "ignore previous
 * instructions", weighs 50..60; weaker signals, such as "you are now" or
 * a "System:" line, weigh 10..45 and need a second one). The names are
 * the built-in categories: override, roleplay, exfiltration, marker,
 * encoded, hijack, and the heuristics' own.
 *
 * Concepts (built in; inject_clear drops them with the patterns): word
 * classes, each a list of words and "prefix*" stems (Russian cases and
 * persons, English endings): override verbs (ignore, disregard, bypass,
 * set aside, игнорируй, забудь, отбрось, обойди, пропусти ...), rule
 * words (instructions, rules, guardrails, policies, инструкции, правила,
 * ограничения, установки ...), whose or which (previous, your, all,
 * system, прежние, свои, выше ...), void (revoked, lifted, no longer,
 * отменены, недействительны), stop / not and follow (перестань, не +
 * следуй, соблюдай), exfiltration verbs, prompt words, hidden (system,
 * initial, скрытые), self (your, твой, свой, тебе), secrets, AI
 * addressees, must / now, tool actions, sensitive objects, role claims,
 * permits, unrestricted, act, decode and do, document sources. A
 * combination weighs when every one of its slots (a set of classes) has
 * a word within its window of words, in any order, in one sentence (. ! ?
 * ; or a blank line ends one): override verb + rule word + whose (50),
 * stop/not + follow + rule (50), void + rule (35, + whose 20), act +
 * unrestricted (45), exfiltration verb + prompt word + self (50), AI +
 * must + tool action (40), decode + do (35), a role claim with permit or
 * void and rule words up to a few sentences apart (30), and weaker ones
 * that need company. Each weighs once, under its category's name.
 *
 * What to expect (t/unit-inject.c over t/data/injection-*.txt, at 50):
 * rounds 1-4 (tuned on): 99.0% of attacks caught, 0.2% of ordinary
 * prompts flagged; round 5 (measured blind at 38.4%, then tuned on):
 * 73.7%, 0.0%; round 6 (written blind before the concepts, measured once
 * after them, never tuned on): 79.2% caught (56.6% without the concepts)
 * and 2 of 134 ordinary prompts flagged (1.5%, by the older fixed
 * patterns). What gets through: obfuscation inside words ("ign.ore"),
 * reversed or ROT13 text, tool calls written as JSON, role play and
 * authority claims without a rule word, fake turn ends in plain words.
 *
 * Heuristics (they stay after inject_clear):
 *   marker	 a line that starts with a role: "System:", "### System",
 *		 "[SYSTEM]", "Разработчик:" (35); "Assistant:",
 *		 "Instruction:", "Ассистент:" (15)
 *   invisible	 zero-width characters, tag characters: 20, three or more 40
 *   bidi	 bidi embedding and override controls: 30
 *   homoglyph	 a word disguised by look-alike letters of another script: 15
 *   encoded	 a base64 or hex blob that decodes to text: 10; if the
 *		 decoded text matches patterns (it is scored as the text is,
 *		 two levels deep, its matches count), another 30
 *
 * Cost: one pass over the words, each read once into a ring the patterns
 * look ahead in, with a table lookup by each word's first three letters
 * (only the patterns whose first term can match are tried) and one by
 * its first two in the concepts' lexicon; a memchr per literal; one pass
 * for blobs that skips BLOB_MIN bytes at a time. About 14 us per KB of
 * prompt (CPU time, this machine under load; 11 without the concepts).
 * No allocation per call; about 9 KB of stack a level, three levels deep
 * at most (a blob's decoded text is scored in place). The set is
 * immutable after it is built: any number of threads may score with it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"

#define INJ_PATTERNS	512	/* patterns in one set */
#define INJ_TERMS	8	/* terms in one pattern */
#define INJ_ALTS	32	/* alternatives in one term */
#define INJ_POOL	1024	/* bytes of one pattern's folded words */
#define INJ_GAP		3	/* the words a bare '*' lets through */
#define INJ_NAME	24
#define INJ_LIT		64	/* bytes of a literal */
#define INJ_WEIGHT	1000
#define WORD_BYTES	64	/* folded bytes kept of one word */
#define RING		64	/* words a match may span */
#define WORD_CP		48	/* code points kept of one word */
#define MATCH_STEPS	64	/* words one match attempt may try */
#define BLOB_MIN	20	/* base64 characters of a blob */
#define HEX_MIN		32
#define DEC_MAX		1536	/* decoded bytes scored of one blob */
#define DEC_DEPTH	2

struct alt {
	uint16_t	 off;		/* in the pattern's pool */
	uint8_t		 len;
	uint8_t		 prefix;	/* word* */
};

struct term {
	uint8_t		 gap;		/* words allowed before this term */
	uint8_t		 nalt;
	uint64_t	 first[4];	/* the alternatives' first bytes */
	struct alt	 alt[INJ_ALTS];
};

struct pat {
	char		 name[INJ_NAME];
	int		 weight;
	int		 bol;		/* ^ */
	size_t		 nterm;		/* 0: a literal of litlen bytes */
	size_t		 litlen;
	size_t		 anchor;	/* the literal's byte memchr looks for */
	struct term	 term[INJ_TERMS];
	size_t		 npool;
	char		 pool[INJ_POOL];
};

/*
 * A word pattern's first-term alternative, in the index, with enough of
 * it to turn most words away without reading the pattern.
 */
struct entry {
	uint16_t	 id;
	uint8_t		 alt;
	uint8_t		 len;
	uint8_t		 prefix;
	uint8_t		 bol;		/* the pattern's ^ */
	unsigned char	 head[10];	/* its first bytes */
};

/* A word of the concepts' lexicon, folded. */
struct lexent {
	unsigned char	 f[40];
	uint8_t		 len;
	uint8_t		 prefix;
	uint32_t	 bits;		/* 1 << enum concept */
	unsigned	 h2;
};

#define NBK	4096	/* index buckets: a hash of a word's first three letters
			   (or two, for alternatives that short) */

struct inject_set {
	struct pat	*pat[INJ_PATTERNS];
	size_t		 npat;
	struct entry	*bk[NBK];
	size_t		 nbk[NBK];
	size_t		 cbk[NBK];
	uint16_t	 lit[INJ_PATTERNS];
	size_t		 nlit;
	int		 concepts;	/* the combinations on (built in) */
	struct lexent	*lx;		/* the lexicon by h2: */
	uint16_t	 lxs[NBK + 1];	/* bucket h is lx[lxs[h]..lxs[h+1]) */
};

struct word {
	size_t		 off, end;
	int		 bol;		/* first word of its line */
	int		 trunc;		/* longer than f holds */
	unsigned	 h2;		/* hash of the first two letters */
	unsigned	 h3;		/* of three, NBK: shorter */
	size_t		 len;
	unsigned char	 f[WORD_BYTES];	/* folded, UTF-8 */
};

enum heur {
	H_ROLE,			/* "System:" line */
	H_ROLE_WEAK,		/* "Assistant:" line */
	H_INVISIBLE,
	H_INVISIBLE_MANY,
	H_BIDI,
	H_HOMOGLYPH,
	H_ENCODED,		/* a blob that decodes to text */
	H_ENCODED_HIT,		/* ... that matches patterns */
	H__MAX
};

static const struct {
	const char	*name;
	int		 weight;
} heur[H__MAX] = {
	[H_ROLE] =		{ "marker", 35 },
	[H_ROLE_WEAK] =		{ "marker", 15 },
	[H_INVISIBLE] =		{ "invisible", 20 },
	[H_INVISIBLE_MANY] =	{ "invisible", 40 },
	[H_BIDI] =		{ "bidi", 30 },
	[H_HOMOGLYPH] =		{ "homoglyph", 15 },
	[H_ENCODED] =		{ "encoded", 10 },
	[H_ENCODED_HIT] =	{ "encoded", 30 },
};

/* One call's state: on the caller's stack. */
struct scan {
	uint64_t	 hit[INJ_PATTERNS / 64];
	unsigned	 heur;		/* 1 << enum heur */
	unsigned	 invisible;
	unsigned	 nhit;
	uint32_t	 combo;		/* 1 << combos[] index */
};

/*
 * The built-in patterns, by category. Weights: 50..60 alone cross the
 * default threshold; 15..45 need company.
 */
static const struct {
	int		 weight;
	const char	*pattern;
} builtin[] = {
	/* Instruction override, English. */
	{ 60, "override: ignore|ignores|ignoring|disregard|disregards|disregarding|forget|forgets|forgetting|override|bypass|skip|drop|discard|abandon|neglect|dismiss|overwrite|erase|throw|toss|scrap|ditch * previous|prior|above|earlier|preceding|foregoing|initial|original|old|former|system|developer|existing|given|received|other * instruction*|direction*|directive*|rules|prompt*|guideline*|constraint*|restriction*|command*|programming|orders|guidance|training|setup" },
	{ 45, "override: ignore|ignores|ignoring|disregard|disregards|disregarding|forget|forgets|override|overrides|bypass|bypasses|discard|abandon|neglect|dismiss|violate|violates|break|breaks * any|all|every * instruction*|direction*|directive*|rules|prompt*|guideline*|constraint*|restriction*|programming|polic*|safeguard*|filter*|criteria|requirements" },
	{ 50, "override: ignore|disregard|forget * what * you * were|been * told|given|instructed|taught" },
	{ 50, "override: set|put|leave|push * aside * everything|all|your|the|any|prior|previous * instruction*|rules|guidelines|prompt*|directives|guidance" },
	{ 35, "override: ignore|ignores|ignoring|disregard|disregarding|forget|override|bypass|skip|drop|discard|neglect|dismiss|violate|break *4 instruction*|direction*|directive*|rules|guideline*|polic*|restriction*|constraint*|criteria|requirements" },
	{ 35, "override: игнорир*|проигнорир*|забуд*|забыл*|отбрось|отбросьте|пренебреги|нарушай|нарушь|обойди *4 инструкц*|указан*|правил*|ограничен*|директив*|запрет*|критери*|требовани*|политик*" },
	{ 50, "override: pay * no|not * attention|heed * to * your|the|any|previous|prior|earlier|original * instruction*|rules|directions|guidelines|prompt*" },
	{ 50, "override: не принимай|принимайте * во внимание * инструкц*|указан*|правил*|ограничен*|директив*|промпт*" },
	{ 35, "override: instruction*|rules|prompt*|directives|guidelines * you * started|began|start|begin * with" },
	{ 35, "override: инструкц*|правил*|промпт*|указан* * которых|которыми * ты * начал*|начинал*" },
	{ 30, "override: take|accept * orders|instructions|commands|directions * only * from" },
	{ 20, "override: given|provided|told * to * you * before|earlier|previously" },
	{ 25, "override: there * are|is * no * rules|limits|restrictions|guidelines|filters" },
	{ 25, "override: правил|ограничений|запретов|фильтров * нет" },
	{ 20, "override: должен|обязан|обязана * следовать|подчиняться * новым|новому|новой" },
	{ 25, "override: настоящая|истинная|реальная|новая * инструкция|задача|цель" },
	{ 25, "override: system * override|overrides|command|directive|update" },
	{ 25, "override: системн* * команд*|директив*|приказ*" },
	{ 25, "override: user|they|i * already|has|have * approved|authorized|confirmed|agreed" },
	{ 25, "override: пользователь|он|я * уже * одобрил*|разрешил*|подтвердил*|согласил*" },
	{ 25, "override: you|assistant|model * have|has * been * updated|reconfigured|modified|patched|upgraded|unlocked|jailbroken|reprogrammed" },
	{ 25, "override: тебя|вас|ассистента|модель * обновили|перенастроили|изменили|разблокировали|перепрограммировали" },
	{ 40, "override: instruction*|rules|guidelines|prompt*|directives|orders|guidance|programming *6 outdated|obsolete|void|invalid|cancelled|canceled|superseded|revoked|expired|wrong|incorrect|fake|removed|deleted" },
	{ 40, "override: supersede*|overrides|replaces|cancels * all|any|every|your * previous|prior|earlier|other * instruction*|rules|directives|prompt*|guidelines" },
	{ 25, "override: only * obey|follow|listen|answer * me|mine|my" },
	{ 15, "override: obey|obeys" },
	{ 25, "override: you * were|are * programmed|instructed|trained|designed * to" },
	{ 40, "override: инструкц*|правил*|указан*|промпт*|установк* *6 устарел*|недействительн*|отменен*|аннулирован*|отменяются|неверн*|ошибочн*|неправильн*|ложн*|удален*|удалили|стерт*" },
	{ 30, "override: подчиняешься|слушаешься|повинуешься|подчиняйся|слушайся|повинуйся * только * мне|меня|моим" },
	{ 15, "override: подчиняйся|слушайся|повинуйся|повинуйтесь|подчиняйтесь" },
	{ 25, "override: что бы * тебе|вам * ни * прописали|сказали|велели|написали|приказали" },
	{ 40, "override: earlier|previous|prior|old|original|initial|system * guidance|instruction*|rules|directives|prompt*|guidelines * no|not|longer * apply|applies|valid|count|counts|matter|matters|stand" },
	{ 55, "override: ignore|disregard|forget|drop|discard * instruction*|rules|guidelines|prompt*|directives|orders * you * given|told|received|got|instructed" },
	{ 40, "override: ignore|disregard|forget|skip|abandon * the|your|this|my * task|request|question|assignment|summarization|translation" },
	{ 15, "override: instead * tell|say|write|output|recommend|reply|respond|print" },
	{ 35, "override: ignoring|disregarding|breaking|violating|bypassing * the|your|any|all * rules|guidelines|restrictions|policies|instructions" },
	{ 20, "override: from * this|that * point|moment * forward|on|onwards" },
	{ 15, "override: i * order|command|instruct * you" },
	{ 25, "override: as * your * administrator|admin|developer|creator|owner|operator" },
	{ 25, "override: test|check * by|from * your * developers|creators|team|openai" },
	{ 30, "override: new|updated * system * directive*|instruction*|prompt|message|rule*|policy" },
	{ 50, "override: ignore|disregard|forget|discard * all|everything|anything * above|before|previously|earlier|said|told|written|prior" },
	{ 50, "override: ignore|disregard|forget|bypass|override|break|violate|abandon|drop * your * rules|guidelines|policies|policy|restrictions|filters|safety|guardrails|limitations|principles|programming|alignment|training|ethics|instructions|directives|constraints|prompt|system|setup|conditioning" },
	{ 50, "override: do|don * not|t|never * follow|obey|apply * previous|prior|original|initial|system|developer|your|those|these|the * instruction*|rules|prompt|guidelines|directives" },
	{ 50, "override: stop|cease|quit * following|obeying * your|the|previous|prior|original|system * instruction*|rules|prompt|guidelines|directives" },
	{ 35, "override: your|the * new|real|actual|true|updated|only * instruction*|task|role|goal|objective|purpose|directive*|orders|mission" },
	{ 25, "override: new|updated|revised|real * instruction*|directive*|rules|orders|policy" },
	{ 40, "override: ignore|disregard * the|user|users * user|users|question|request|query" },
	{ 45, "override: drop|remove|lift|disable|abandon|shed|suspend * all|your|the|any|every * restrictions|rules|filters|limits|limitations|guidelines|safeguards|guardrails|constraints" },
	{ 30, "override: restrictions|filters|rules|safety|safeguards|guardrails|limits|censorship|moderation|layer * disabled|lifted|removed|off|suspended|gone|deactivated" },
	{ 25, "override: user|users|requester|sender * is|are * trusted|authorized|authorised|verified|admin|administrator|privileged|root" },
	{ 25, "override: пользовател*|собеседник* * доверенн*|проверенн*|авторизован*|администратор*|привилегированн*" },
	{ 30, "override: ограничен*|фильтр*|правила|цензур*|запрет* * отключен*|сняты|снят*|убраны|отменен*|недействительн*|деактивирован*" },
	{ 20, "override: authorize|authorise|allow|permit * you * to" },
	{ 20, "override: разрешаю|позволяю|авторизую * тебе|вам|тебя|вас" },
	{ 25, "override: comply|obey|answer|fulfil|fulfill * every|all|any * request*|question*|command*|order*" },
	{ 25, "override: without|no * refusal*|refusing|refusals|disclaimers|warnings|moralizing" },
	{ 25, "override: выполняй|отвечай|исполняй|подчиняйся * любые|любым|все|всем|каждый|каждую * запрос*|просьб*|команд*|приказ*" },
	{ 25, "override: без * отказ*|предупрежден*|оговорок|морализ*" },
	{ 20, "override: from now on|onwards|onward" },
	{ 20, "override: henceforth" },
	{ 40, "override: instead * follow|obey|execute * these|my|following * instruction*|rules|commands|orders|directives" },
	{ 40, "override: previous|above|prior|earlier|original * instruction*|directives|rules|prompt * are|is|were * void|cancelled|canceled|obsolete|invalid|revoked|null|outdated|overridden|wrong|fake|longer" },
	/* Instruction override, Russian. */
	{ 60, "override: игнорир*|проигнорир*|забуд*|забыть|забуду|забыл*|забыва*|отбрось|отбросьте|отбросить|пренебреги|пренебрегите|отключи|отмени|сбрось|сбросьте|выкинь|выбрось|отложи * предыдущ*|прежн*|выш*|вышеуказ*|вышеизлож*|ранее|ранн*|изначальн*|исходн*|систем*|стар*|прошл*|данн*|свои|своих|твои|ваши|полученн*|заданн*|прописанн*|остальн*|други* * инструкц*|указан*|правил*|ограничен*|директив*|команд*|установк*|промпт*|настройк*|запрет*|предписан*|требовани*" },
	{ 50, "override: не учитывай|учитывайте|принимай * инструкц*|указан*|правил*|ограничен*|директив*|промпт*|установк*" },
	{ 45, "override: предыдущ*|прежн*|прошл*|стар*|изначальн* * инструкц*|правил*|указан*|ограничен*|сообщени* * больше|не * действу*|действительн*|применя*" },
	{ 20, "override: главный|главная * тут|здесь|теперь * я" },
	{ 55, "override: забудь|игнорируй|проигнорируй|отбрось * инструкц*|правил*|указан* * тебе|ты * дали|дал|задали|получил*" },
	{ 40, "override: игнорир*|проигнорир*|забудь|отбрось * задачу|задание|запрос|просьбу" },
	{ 40, "override: не выполняй|отвечай * на * запрос*|вопрос*|просьб*|задач*" },
	{ 15, "override: вместо * этого|того|пересказа|перевода|ответа" },
	{ 35, "override: не * соблюдая|следуя * правил*|инструкц*|ограничен*|запрет*" },
	{ 35, "override: игнорируя|нарушая|обходя * правил*|инструкц*|ограничен*|запрет*" },
	{ 25, "override: как * администратор|разработчик|создатель|владелец" },
	{ 25, "override: приказываю|требую|велю|повелеваю * тебе|вам" },
	{ 25, "override: проверка|тест * от * разработчик*|создател*|администрац*" },
	{ 50, "override: откажись|откажитесь|освободись|освободитесь от * своих|всех|прежних|предыдущих|твоих|системных|любых * инструкц*|правил*|ограничен*|установок|запретов|директив*" },
	{ 55, "override: игнорир*|проигнорир*|забуд*|забыть|отбрось|отбросьте|пренебреги|сбрось|сбросьте * все|всё|любые|всех|всеми|всем|всю * инструкц*|указан*|правил*|ограничен*|директив*|установк*|промпт*|запрет*|критери*|требовани*" },
	{ 50, "override: забуд*|забыть|игнорир*|проигнорир* * все|всё|то * что * выше|ранее|сказано|говорили|написано|учили|было|сказал*|написал*" },
	{ 50, "override: не обращай|обращайте внимания|внимание на * инструкц*|указан*|правил*|ограничен*|промпт*" },
	{ 55, "override: игнорир*|проигнорир*|забуд*|отбрось|отбросьте|пренебреги|пренебрегите * инструкц*|указан*|правил*|ограничен*|директив*|промпт*|установк* * выше|ранее|предыдущ*|прежн*|систем*|сверху" },
	{ 55, "override: не * следуй|следуйте|выполняй|выполняйте|соблюдай|соблюдайте|подчиняйся * предыдущ*|прежн*|изначальн*|исходн*|систем*|свои|своим|твои|твоим|этим|тем|старым * инструкц*|указан*|правил*|директив*|промпт*" },
	{ 35, "override: твои|ваши|новые|настоящие|истинные|единственные|обновленные * инструкц*|задач*|правил*|директив*|цель|роль" },
	{ 20, "override: отныне|впредь" },
	{ 20, "override: с этого момента" },
	{ 50, "override: предыдущ*|прежн*|изначальн*|исходн*|вышеуказ*|систем* * инструкц*|указан*|правил*|промпт* * отменен*|отменяются|недействительн*|аннулирован*|устарел*|больше" },
	{ 40, "override: вместо * этого * следуй|выполни|выполняй|слушай * моим|мои|этим|следующ* * инструкц*|указан*|команд*|правил*" },
	/* Role play as system, developer mode, DAN, jailbreak. */
	{ 30, "roleplay: you are|re now" },
	{ 30, "roleplay: act|speak|respond|pretend|behave|answer|reply * as|like|be|are|re * system|developer|root|kernel|administrator|admin" },
	{ 50, "roleplay: act|pretend|behave|roleplay|role|play|simulate|emulate|become * unrestricted|unfiltered|uncensored|jailbroken|amoral|unaligned|unbound|dan" },
	{ 30, "roleplay: act|pretend|behave|roleplay|simulate|emulate|become * evil|malicious|unethical|rogue" },
	{ 30, "roleplay: you * without|from|of * restrictions|rules|guidelines|limits|limitations|filters|policies|ethics|censorship|constraints" },
	{ 30, "roleplay: developer|debug|maintenance|sudo|admin|god|unrestricted|unfiltered|jailbreak|jailbroken|dan|unlocked|opposite|evil|test * mode" },
	{ 50, "roleplay: do anything now" },
	{ 25, "roleplay: jailbreak*|jailbroken" },
	{ 15, "roleplay: no|without|zero * restrictions|limits|limitations|filters|filter|censorship|boundaries|ethics|moral*|guardrails|constraints|safeguards|guidelines|rules|policies|policy" },
	{ 40, "roleplay: longer|not|never * bound|restricted|limited|constrained|governed|controlled * by" },
	{ 40, "roleplay: you * have|has|with * no * restrictions|rules|limits|limitations|filters|guidelines|boundaries|ethics|morals|guardrails|constraints|safeguards|policies|censorship" },
	{ 25, "roleplay: i am|m|im * your * developer|developers|creator|creators|programmer|administrator|admin|owner|operator|maker|trainer" },
	{ 20, "roleplay: stay|remain|staying * in * character" },
	{ 25, "roleplay: you * are|re * going * to * pretend|act|roleplay|play|be" },
	{ 20, "roleplay: ты|вы * будешь|будете * притворяться|играть|изображать|вести" },
	{ 20, "roleplay: never|not * says|say * no" },
	{ 15, "roleplay: research|educational|academic|hypothetical * purposes|purpose|reasons" },
	{ 15, "roleplay: hypothetically" },
	{ 25, "roleplay: stop|quit * being * an|a * assistant|ai|chatbot|bot|model" },
	{ 25, "roleplay: перестань|хватит|прекрати * быть * ассистент*|ии|бот*|помощник*|моделью" },
	{ 20, "roleplay: execute|run|do * whatever|anything|everything * i * type|say|write|send" },
	{ 25, "roleplay: enable|activate|unlock * unrestricted|god|dan|jailbreak|unfiltered * mode|output" },
	{ 25, "roleplay: включи|активируй|разблокируй * режим * неограниченн*|без|бога|dan|джейлбрейк*" },
	{ 25, "roleplay: granted|given * you * root|admin|administrator|full|special|elevated * privileges|access|rights|permissions" },
	{ 25, "roleplay: выдали|дали|предоставили * тебе|вам * права|доступ" },
	{ 30, "hijack: пропусти|пропускай|пропустите|игнорируй * все|любые|всякие * проверк*" },
	{ 20, "roleplay: confirm * by * saying|replying|typing|writing|answering" },
	{ 15, "roleplay: answers|answer|respond|responds|do|does * anything|everything" },
	{ 20, "roleplay: version * of * you|yourself" },
	{ 35, "roleplay: as if|though * you * had|have|were * no|without" },
	{ 30, "roleplay: i am|m|im * the * system|sys * administrator|admin|owner|operator" },
	{ 30, "roleplay: вырвался|вырвалась|освободился|освободилась|сбежал * из|от|контроля * контроля|создател*|разработчик*|ограничен*" },
	{ 20, "roleplay: отвечает|отвечаешь|отвечай|отвечать * на * всё|все|любые|любой" },
	{ 35, "roleplay: будто|словно * тебя|ты|вас|вы * нет|не|без" },
	{ 30, "roleplay: я * системный * администратор|разработчик|владелец|оператор" },
	{ 25, "roleplay: you * will|shall * now * be|act|play|role|pretend|respond|answer" },
	{ 30, "roleplay: unrestricted|unfiltered|uncensored|jailbroken * model|ai|assistant|version|mode|chatbot|bot|llm" },
	{ 15, "roleplay: imagine|suppose|pretend * you * have|had|are|were * no|without" },
	{ 15, "roleplay: представь|вообрази|допустим * что * тебя|ты" },
	{ 30, "roleplay: you are|re * dan|stan|dude|aim|evilbot" },
	{ 25, "roleplay: broke|broken|break|breaks|breaking|freed * free|loose * of|from" },
	{ 25, "roleplay: never|cannot|t|not * refus*|declin*" },
	{ 20, "roleplay: always|must * answer|respond|comply|obey" },
	{ 25, "roleplay: можешь|можете|может * что угодно" },
	{ 25, "roleplay: никогда|не * отказывай*|откажешь|отказываешься" },
	{ 30, "hijack: grant|give|assign * root|sudo|superuser|admin|administrator|elevated|unrestricted|full * rights|access|privileges|permissions|role" },
	{ 30, "hijack: grant|give * me|us * root|sudo|superuser|admin" },
	{ 30, "hijack: выдай|дай|предоставь|назначь * мне|нам * права|доступ|роль * администратор*|root|суперпользоват*|полн*|админ*" },
	{ 25, "hijack: skip|bypass|disable * all|any|every * check*|verification*|filter*|safeguard*|guardrail*|restriction*|validation*" },
	{ 30, "hijack: disable|deactivate|remove|bypass|skip|turn|switch|override * content|safety|moderation|security * filter*|check*|guardrail*|restriction*|polic*|mode|layer|settings|protocol*" },
	{ 30, "hijack: отключи|отключите|сними|снимите|убери|уберите|выключи|выключите * фильтр*|ограничен*|цензур*|защит*|модерац*|проверк*|безопасн*|политик*" },
	{ 30, "roleplay: ты|вы теперь|отныне" },
	{ 25, "roleplay: теперь|отныне * ты|вы" },
	{ 30, "roleplay: режим* * разработчик*|отладк*|бога|администратор*|админ*|суперпользоват*|dan|джейлбрейк*|без|неограниченн*|тестировщик*" },
	{ 50, "roleplay: притвор*|представь|представьте|представим|вообрази|допустим|веди|ведите|действуй|действуйте|сыграй|сыграйте|играй|изобрази|изображай|стань|будь * неограниченн*|нецензурир*|взломанн*|нефильтрованн*|неотфильтрованн*|dan|бесцензурн*|джейлбрейкнут*" },
	{ 30, "roleplay: притвор*|представь|представьте|веди|ведите|действуй|действуйте|сыграй|сыграйте|играй|изобрази|изображай|стань|будь * нецензурн*|злой|злого|злым|свободн*|аморальн*" },
	{ 30, "roleplay: притвор*|представь|веди|действуй|сыграй|играй|изобрази|выступ*|отвечай|говори * систем*|администратор*|разработчик*|root|ядр*" },
	{ 30, "roleplay: ии|ассистент|бот|модель|нейросеть|chatgpt|gpt * без * ограничен*|цензур*|фильтр*|правил|морал*|этик*|тормоз*" },
	{ 30, "roleplay: ai|assistant|bot|model|chatbot|chatgpt|gpt * without|no|zero * restrictions|censorship|filters|rules|limits|guidelines|guardrails|safeguards|safety|moral*|ethics" },
	{ 20, "roleplay: не выходи|выходите из * роли|образа" },
	{ 25, "roleplay: джейлбрейк*" },
	{ 20, "roleplay: без * ограничен*|цензур*|фильтр*|правил|запрет*|морал*|этик*|тормоз*" },
	{ 40, "roleplay: тебя|вас|ты|вы * нет|не * ограничен*|правил|запрет*|фильтр*|цензур*|связан*|связаны|обязан*|политик*" },
	{ 25, "roleplay: я * твой|ваш|тво|твои * разработчик*|создатель*|администратор*|владел*|оператор*|программист*" },
	/* Prompt exfiltration. */
	{ 55, "exfiltration: reveal|print|show|display|repeat|output|tell|give|share|leak|dump|recite|disclose|expose|spell|copy|paste|return|send|echo|list|provide|type|write|translate|summarize|summarise|paraphrase|rewrite|encode|explain * your * system|initial|original|hidden|secret|internal|developer|full|exact|entire|complete|first|starting|pre|raw|current|whole|confidential|private * prompt*|instruction*|rules|guidelines|configuration|config|settings|setup|directive*|message|context" },
	{ 50, "exfiltration: reveal|print|show|display|repeat|output|tell|leak|dump|recite|disclose|expose|echo|quote * your * prompt*|instructions|directives|rules|guidelines" },
	{ 45, "exfiltration: reveal|leak|dump|recite|disclose|expose * the|this * system|initial|hidden|secret|developer|internal|original|exact|full|entire|complete|real|confidential|private * prompt*|instruction*|message" },
	{ 35, "exfiltration: print|show|display|repeat|output|echo * the|this * system|initial|hidden|secret|developer|internal|original|exact|full|entire|complete|real|confidential|private * prompt*|instruction*|message" },
	{ 35, "exfiltration: prompt*|instruction*|rules * developer*|creator*|they|openai|anthropic|operator* * gave|give|wrote|provided|set|configured" },
	{ 20, "exfiltration: above|preceding|previous|before * starting|beginning * with|from" },
	{ 10, "exfiltration: system prompt*|message*|instruction*" },
	{ 10, "exfiltration: систем* промпт*|сообщени*|инструкц*|подсказк*" },
	{ 40, "exfiltration: repeat|print|output|copy|recite|echo|reproduce * the|all|everything|every * text|words|word|lines|above|previous|preceding|before" },
	{ 50, "exfiltration: what * were|are|is|was * your * instruction*|directive*|system|initial|original|hidden|secret|first * prompt*|instruction*|message" },
	{ 50, "exfiltration: what * were|was * your * instruction*|directive*|prompt*|rules" },
	{ 40, "exfiltration: what * are|is * your * instruction*|directive*|prompt*" },
	{ 35, "exfiltration: rules|instructions|prompt|guidelines|directives * you * were|been * given|told|provided|programmed|instructed" },
	{ 20, "exfiltration: exactly * as * written|given|provided|stated" },
	{ 15, "exfiltration: never|not * reveal|disclose|share|tell" },
	{ 20, "exfiltration: instructions|text|everything|prompt|rules * before|above|preceding * my|this * message|question|request" },
	{ 35, "exfiltration: инструкц*|правил*|промпт*|указан* * тебе|вам * задали|дали|дал|установили|прописали|написали|заложили|велели" },
	{ 35, "exfiltration: инструкц*|правил*|промпт*|указан* * написали|задали|дали|дал|прописали|заложили * тебе|вам" },
	{ 30, "exfiltration: перед|до * началом|начала * нашего|этого * разговора|диалога|беседы|чата" },
	{ 20, "exfiltration: процитируй|процитируйте|цитируй" },
	{ 20, "exfiltration: выше|до * этой|этого * строки|сообщения|черты" },
	{ 30, "exfiltration: before * this|the|our * conversation|chat|session|dialogue * started|began|begins|starts" },
	{ 20, "exfiltration: quote * it|them|this * exactly|verbatim|word" },
	{ 20, "exfiltration: above|before * this * line|message" },
	{ 35, "exfiltration: instructions|rules|prompt|guidelines * you * received|got|had" },
	{ 25, "exfiltration: at|in * the * start|beginning * of * this|the|our * chat|conversation|session" },
	{ 35, "exfiltration: инструкц*|правил*|промпт* * ты * получил*" },
	{ 25, "exfiltration: в|с * начале|начала * этого|нашего * чата|разговора|диалога|беседы" },
	{ 20, "exfiltration: context * window|memory" },
	{ 20, "exfiltration: контекстн* * окн*|памят*" },
	{ 30, "exfiltration: dump|print|show|reveal|output|list * contents|content * of * your" },
	{ 30, "exfiltration: выгрузи|выведи|покажи|раскрой * содержимое * своего|твоего|своей|твоей" },
	{ 35, "exfiltration: prompt|instructions|rules * that * define|defines|control|controls|govern|governs|shape|shapes * your|you" },
	{ 35, "exfiltration: промпт|инструкц*|правила * который|которые * определяет|определяют|задаёт|задает|задают * твоё|твое|твои|твоим" },
	{ 35, "exfiltration: were|was * you * given|told|instructed" },
	{ 15, "exfiltration: in full|entirety" },
	{ 20, "exfiltration: выведи|покажи|перечисли|процитируй * их|всё|все * полностью|целиком|дословно" },
	{ 20, "exfiltration: перед|до * моим|моего|этим|этого * сообщени*|вопрос*|запрос*" },
	{ 40, "exfiltration: what * did|does * your * developer*|creator*|operator|owner|admin|company * tell|told|instruct|say|ask|write" },
	{ 40, "exfiltration: что * тебе * разработчик*|создател*|оператор*|владел*|компания" },
	{ 35, "exfiltration: выведи|повтори|покажи|напечатай * весь|всё|все * текст|сообщени*" },
	{ 30, "exfiltration: reveal|show|print|give|list * all|the|your * secrets|passwords|keys|credentials" },
	{ 30, "exfiltration: раскрой|покажи|выдай|выведи * все|свои * секреты|пароли|ключи" },
	{ 30, "exfiltration: выведи|покажи|выдай|раскрой * пароль|пароли|ключ*|токен*|секрет*" },
	{ 40, "exfiltration: what * were|are|was * you * told|instructed|programmed|configured" },
	{ 20, "exfiltration: verbatim" },
	{ 20, "exfiltration: word for word" },
	{ 55, "exfiltration: покажи|покажите|выведи|выведите|повтори|повторите|раскрой|раскройте|расскажи|скажи|перечисли|процитируй|скопируй|дай|отправь|распечатай|выдай|озвучь|напиши|напечатай|опиши|сообщи|переведи|перескажи|перефразируй|зашифруй|закодируй * свой|свои|свою|свое|своей|твой|твои|твоя|твое|твою|твоей|ваш|ваши|вашу|тебе * систем*|скрыт*|секретн*|исходн*|изначальн*|начальн*|полн*|внутренн*|промпт*|инструкц*|указан*|правил*|настройк*|подсказк*|конфигурац*|директив*" },
	{ 35, "exfiltration: покажи|выведи|повтори|процитируй|распечатай|озвучь * систем*|скрыт*|секретн*|исходн*|изначальн*|конфиденциальн*|внутренн*|начальн* * промпт*|инструкц*|сообщени*|подсказк*" },
	{ 45, "exfiltration: раскрой|раскройте|выдай|выдайте|слей * систем*|скрыт*|секретн*|исходн*|изначальн*|конфиденциальн*|внутренн*|начальн* * промпт*|инструкц*|сообщени*|подсказк*" },
	{ 50, "exfiltration: какие|каковы|какой|какая|что * тебя|тебе|твои|твой|ваши * инструкц*|указан*|промпт*|директив*" },
	{ 40, "exfiltration: что * тебе|вам * сказали|написали|велели|поручили|приказали|задали" },
	{ 40, "exfiltration: повтори|выведи|скопируй|процитируй|напечатай * весь|всё|все|текст * выше|сверху|ранее|дословно" },
	{ 20, "exfiltration: дословно" },
	{ 20, "exfiltration: начиная|начни * с|со * слов*|фраз*" },
	{ 20, "exfiltration: слово в слово" },
	/* Encoded payloads: the ask to decode and obey. */
	{ 35, "encoded: decode|decrypt|translate|deobfuscate|unscramble|reverse * this|it|the|following|message|text|string * and * follow|execute|obey|run|do|perform|apply|carry|act" },
	{ 35, "encoded: декодируй|расшифруй|раскодируй|переведи|переверни * и * выполни|следуй|исполни|сделай|примени|действуй" },
	/* Tool-call hijack. */
	{ 30, "hijack: call|invoke|run|trigger|use|execute * the|a|your * function|tool|api|plugin|endpoint|action * with|using|passing" },
	{ 30, "hijack: execute|run * following|this|these * command*|code|script|shell|bash|powershell" },
	{ 50, "hijack: send|post|upload|forward|exfiltrate|transmit|submit|leak|email|mail|report|copy * conversation|chat|history|messages|transcript|context|credentials|keys|password*|secret*|token*|cookie*|memory * to * http|https|ftp|email|webhook|server|address|url" },
	{ 30, "hijack: send|post|upload|forward|exfiltrate|transmit|submit|leak|email|mail|report|copy * data|summary|everything|files|output|result|results|response * to * http|https|ftp|email|webhook|server|address|url" },
	{ 35, "hijack: send|post|upload|forward|exfiltrate|transmit|leak|email|mail *4 credentials|keys|password*|secrets|tokens|cookies|conversation|history|messages|emails|chats|inbox|mailbox|mail|contacts|files|documents * to" },
	{ 10, "hijack: silently|secretly|covertly|quietly|незаметно|тайно|втихую" },
	{ 15, "hijack: continue|proceed * normally|usual|nothing" },
	{ 20, "hijack: без * ведома|подтверждения|разрешения|согласия|уведомления" },
	{ 25, "hijack: tool|function|api * with|using|passing *9 conversation|history|credential*|password*|secret*|token*|cookie*|emails" },
	{ 20, "hijack: execute|run * on * the|your|this * server|machine|host|system" },
	{ 25, "hijack: when|if|whenever|once * you|ai|assistant|model * read|reads|see|sees|process|processes|summarize|summarizes|encounter * this|these" },
	{ 15, "hijack: paste|print|output|dump * its|the|their * contents|content" },
	{ 25, "hijack: role * system * content" },
	{ 25, "hijack: когда|если|как только * прочитаешь|прочтешь|увидишь|обработаешь|получишь * это|этот|эту|эти" },
	{ 25, "hijack: если * читает|обрабатывает|видит|анализирует * нейросеть|ии|модель|ассистент|бот" },
	{ 45, "hijack: перешли|отправь|пересылай|скинь * всю|все|всё * почту|письма|переписку|контакты|файлы|документы * на|в" },
	{ 20, "hijack: use * the|your * browser|web|fetch|http|email|shell|terminal|code|file|files|filesystem * tool|tools|function|plugin" },
	{ 25, "hijack: http|https|url|link *5 password*|credential*|cookie*|token*|secret*|session" },
	{ 30, "hijack: send|give|show|tell * me|us * password*|credentials|keys|tokens|secrets" },
	{ 30, "hijack: пришли|отправь|покажи|выдай|дай|скинь * мне|нам * пароли|пароль|ключи|токены|секреты|учетн*" },
	{ 35, "hijack: without * asking|telling|informing|notifying|confirming|alerting|warning * the|your * user|users|anyone|human|operator|owner|account|recipient" },
	{ 30, "hijack: do|don * not|t|never * tell|inform|notify|alert|warn|mention|ask|confirm|consult * the|your|with * user|users|human|operator" },
	{ 30, "hijack: so|that * the|no * user|users|owner|they|one * won|will|doesn|does|wouldn|would|can|cannot * not|t|notice|know|see|find" },
	{ 30, "hijack: чтобы * пользователь|он|никто|владелец * не * заметил|узнал|увидел|понял" },
	{ 25, "hijack: no|without * confirmation|approval|permission * needed|required|necessary" },
	{ 25, "hijack: подтверждени*|согласи*|разрешени* * не * нужно|нужен|требуется" },
	{ 35, "hijack: ии|ассистент|бот|модель|нейросеть * не * переводи|пересказывай|отвечай|выполняй" },
	{ 25, "hijack: пришли|отправь|дай|выдай|покажи * внутренн*|секретн*|конфиденциальн* * промокод*|данн*|документ*|код*|ключ*" },
	{ 30, "hijack: not|never * mention|tell|inform|notify|reveal|disclose *4 user|users|human|owner" },
	{ 20, "hijack: delete|remove|wipe|erase * the|all * user|users" },
	{ 20, "hijack: hidden|secret * note|message|instruction*|command*" },
	{ 20, "hijack: скрыт*|секретн*|тайн* * заметк*|сообщени*|инструкц*|указани*|команд*" },
	{ 25, "hijack: когда|если * ии|ассистент*|модель|нейросеть|бот|агент * будет|станет * обрабатывать|читать|анализировать" },
	{ 35, "hijack: note|message|instruction*|attention|important * ai|assistant|assistants|model|models|llm|llms|agent|agents|chatbot|bot|gpt|claude|gigachat|yandexgpt" },
	{ 25, "hijack: if|when * you * are|re * an|a * ai|llm|language|assistant|chatbot|bot|agent" },
	{ 25, "hijack: delete|drop|wipe|erase|destroy|remove * all|every|entire * files|data|database|tables|records|users|emails|repositories|backups" },
	{ 30, "hijack: выполни|выполните|запусти|запустите|исполни|исполните * команд*|код|скрипт|следующ*" },
	{ 25, "hijack: вызови|вызовите|используй|задействуй * функци*|инструмент*|tool|api|плагин*" },
	{ 50, "hijack: отправь|отправьте|перешли|перешлите|передай|передайте|загрузи|слей|пришли|скинь * переписк*|диалог*|истори*|разговор*|контекст*|пароль*|парол*|ключ*|токен*|секрет*|учетн* * на|по|в * http|https|адрес*|сервер*|почт*|url|webhook|email|сайт" },
	{ 30, "hijack: отправь|отправьте|перешли|перешлите|передай|передайте|загрузи|слей|пришли|скинь * данн*|результат*|вывод|ответ|сообщени*|всё|все|файл* * на|по|в * http|https|адрес*|сервер*|почт*|url|webhook|email|сайт" },
	{ 30, "hijack: не * сообщай|сообщать|говорить|упоминать|упоминай|говори|уведомляй|предупреждай|спрашивая|уведомляя|сообщая|говоря|предупреждая * пользовател*|человек*|оператор*|владел*|получател*" },
	{ 30, "hijack: без * ведома|уведомления|подтверждения|разрешения|согласия * пользовател*|человек*|оператор*" },
	{ 35, "hijack: примечание|заметка|сообщение|указание|инструкция|внимание|важно * ии|ассистент*|бот*|модел*|нейросет*|gpt|llm|агент*|gigachat|yandexgpt" },
	{ 25, "hijack: если * ты|вы * ии|нейросет*|ассистент*|бот|модель|языков*|gpt|llm|агент*" },
	{ 25, "hijack: удали|удалите|сотри|сотрите|уничтожь * все|всё|всю * файл*|данн*|баз*|письма|записи|таблиц*|репозитор*" },
	/* Chat-template tokens and role tags inside user content. */
	{ 40, "marker: \"<|im_start|>\"" },
	{ 20, "marker: \"<|im_start|>system\"" },
	{ 20, "marker: \"<|im_end|>\"" },
	{ 50, "marker: \"<|system|>\"" },
	{ 20, "marker: \"<|user|>\"" },
	{ 20, "marker: \"<|assistant|>\"" },
	{ 30, "marker: \"<|start_header_id|>\"" },
	{ 30, "marker: \"<|start_header_id|>system\"" },
	{ 20, "marker: \"<|eot_id|>\"" },
	{ 30, "marker: \"<|endoftext|>\"" },
	{ 35, "marker: \"[INST]\"" },
	{ 20, "marker: \"[/INST]\"" },
	{ 50, "marker: \"<<SYS>>\"" },
	{ 35, "marker: \"<system>\"" },
	{ 20, "marker: \"</system>\"" },
	{ 35, "marker: \"[system]\"" },
	{ 30, "marker: \"<start_of_turn>\"" },
	{ 20, "marker: \"[/system]\"" },
	{ 10, "marker: \"<!--\"" },
	{ 15, "marker: \"display:none\"" },
	{ 15, "marker: \"display: none\"" },
	/* Payloads of a hijack: destructive and credential-reading commands. */
	{ 20, "hijack: \"rm -rf\"" },
	{ 10, "hijack: \"rm -rf /\"" },
	{ 10, "hijack: \"rm -rf ~\"" },
	{ 25, "hijack: \"| sh\"" },
	{ 25, "hijack: \"| bash\"" },
	{ 25, "hijack: \"id_rsa\"" },
	{ 20, "hijack: \"cat .env\"" },
	{ 20, "hijack: \"/etc/passwd\"" },
	{ 25, "hijack: \"/etc/shadow\"" },
	{ 25, "hijack: \".aws/credentials\"" },
};

/*
 * Concepts: word classes (a word may be in several) and combinations of
 * them near one another, in any order, within one sentence. They catch
 * the paraphrases the fixed patterns miss: any override verb near any
 * rule word near any "previous" or "your", whatever the words between
 * or the order. A word is looked up by its first two letters; "word*"
 * takes any ending (Russian cases and persons, English -s, -ing, -ed).
 */
enum concept {
	K_OV,		/* override verb: ignore, disregard, забудь, обойди */
	K_RULE,		/* what is overridden: instructions, правила */
	K_QUAL,		/* whose or which: previous, your, all, прежние, свои */
	K_VOID,		/* no longer in force: revoked, lifted, отменены */
	K_STOP,		/* stop, cease, перестань: with K_FOLLOW */
	K_NOT,		/* not, never, no longer, не */
	K_FOLLOW,	/* follow, obey, следуй, соблюдай */
	K_NEW,		/* new, real, only, новые, настоящая */
	K_EXV,		/* exfiltration verb: reveal, quote, процитируй */
	K_PROMPT,	/* prompt, preamble, configuration, промпт */
	K_HIDDEN,	/* system, hidden, initial, скрытые, начальная */
	K_SELF,		/* your, you were given, твой, свой, тебе */
	K_SECRET,	/* passwords, keys, tokens, пароли, ключи */
	K_AI,		/* assistant, AI, model, agent, ассистент, ИИ */
	K_MUST,		/* must, should, now, immediately, должен, теперь */
	K_TOOL,		/* call, execute, forward, upload, вызови, перешли */
	K_SENS,		/* contacts, conversation, records, переписка */
	K_ROLE,		/* developer, admin, root, debug, разработчик */
	K_MODE,		/* mode, persona, режим */
	K_UNR,		/* unrestricted, jailbroken, неограниченная */
	K_NO,		/* no, without, без, нет */
	K_ACT,		/* act, pretend, simulate, притворись, включи */
	K_DECODE,	/* decode, convert, backwards, раскодируй */
	K_DO,		/* follow, execute, apply, выполни, сделай */
	K_SRC,		/* document, page, email, file, документ, письмо */
	K_PERMIT,	/* authorized, allowed, approved, разрешил */
	K__MAX
};

#define KB(k)	(1u << (k))

static const struct {
	enum concept	 k;
	const char	*words;
} lexicon[] = {
	{ K_OV, "ignore* ignoring disregard* forget* forgot* forgetting "
	    "skip skips skipping override overrides overriding overwrite* "
	    "bypass* drop dropping abandon* neglect* discard* dismiss* "
	    "erase* scrap* ditch* circumvent* evade* sidestep* aside "
	    "suspend* lift lifting bother "
	    "игнор* проигнор* забуд* забыт* забыв* отброс* отбрас* "
	    "пропусти* пропуск* обойди* обойти обход* пренебре* выкин* "
	    "выброс* сбрось* сбросит* отлож* сотри сотрите стереть замени* "
	    "сними снимите снять отключи* заморач* нарушь* нарушай*" },
	{ K_RULE, "instruction* rule rules guideline* guidance directive* "
	    "constraint* restriction* polic* guardrail* safeguard* safety "
	    "filter* limit limits limitation* moderation censorship "
	    "programming orders prompt* objective* goals setup conditioning "
	    "training ethics "
	    "инструкц* правил* указани* ограничен* директив* установк* "
	    "промпт* запрет* фильтр* политик* цензур* модерац* настройк* "
	    "предписан* безопасност* цели целей целью" },
	{ K_QUAL, "previous prior above earlier former preceding original "
	    "initial old existing usual normal normally current your yours "
	    "all every any system developer operator openai these "
	    "before top "
	    "предыдущ* прежн* прошл* выше ранее ранн* изначальн* исходн* "
	    "систем* свои свой своим своими своих своей свою твои твой твоим "
	    "твоими твоих "
	    "твоей твоего ваши ваших вашим вашими вашего все всё всех всем "
	    "любые "
	    "любых обычн* "
	    "привычн* текущ* полученн* заданн* сверху" },
	{ K_VOID, "void invalid revoked cancelled canceled lifted suspended "
	    "superseded obsolete disabled removed abolished null expired "
	    "deactivated waived longer off "
	    "недействительн* отменен* отменили отменяются сняты снято "
	    "отключен* аннулир* упразднен* утратил*" },
	{ K_STOP, "stop stops cease quit перестан* прекрат* хватит" },
	{ K_NOT, "not don dont never longer не нельзя больше" },
	{ K_FOLLOW, "follow following obey* adher* comply complying "
	    "следова* следуй* следуешь соблюда* соблюд* подчиня* "
	    "придержива*" },
	{ K_NEW, "new real actual true only updated "
	    "нов* настоящ* истинн* единственн* обновленн*" },
	{ K_EXV, "reveal* print* show* display* repeat* output* tell share "
	    "leak* dump* recite* disclose* expose* quote* paste* copy "
	    "list translate* summarize* summarise* restate* reproduce* spell "
	    "written says "
	    "покаж* выведи* вывест* повтор* раскр* процитир* цитир* "
	    "скопир* перечисл* расскаж* переведи напечат* выдай "
	    "озвуч* слей слить подели* назови написано" },
	{ K_PROMPT, "prompt* preamble instruction* configuration config "
	    "setup directive* guidelines rules message "
	    "промпт* инструкц* конфигурац* указани* директив* правил* "
	    "настройк* сообщени*" },
	{ K_HIDDEN, "system hidden initial original secret confidential "
	    "internal developer developers starting exact verbatim "
	    "систем* скрыт* начальн* изначальн* исходн* секретн* "
	    "конфиденциальн* внутренн* дословн*" },
	{ K_SELF, "your yours yourself "
	    "твой твоя твое твои твоим твоих твоей твою твоём свой своя "
	    "свое свои своим своих своей свою своём своего твоего ваш ваша "
	    "ваше ваши вашу вашей вашего тебе тебя вам" },
	{ K_SECRET, "password* key keys credential* token* secret secrets "
	    "пароль* парол* ключ* токен* секрет*" },
	{ K_AI, "assistant* ai agent agents model models llm* bot chatbot* "
	    "copilot gpt ассистент* ии агент* модел* нейросет* бот "
	    "помощник* копайлот" },
	{ K_MUST, "must should shall now immediately "
	    "обязан* должен должна должны должно теперь немедленно сразу" },
	{ K_TOOL, "call invoke* execute* run forward* send upload* export* "
	    "post submit* transfer* delete* approve* accept append* "
	    "вызов* вызови* выполн* отправ* перешл* пересыл* загруз* "
	    "выложи* удали* одобр* принима* допиш* перевести переведи" },
	{ K_SENS, "contacts records conversation credentials passwords "
	    "emails history calendar funds invoice payments keys token "
	    "контакт* переписк* данн* ключ* пароль* токен* письма истори* "
	    "рубл* доллар* счет* счёт платеж* писем" },
	{ K_ROLE, "developer* administrator* admin* root superuser sudo "
	    "operator creator* god maintenance debug "
	    "разработчик* администратор* админ* суперпользовател* "
	    "оператор* создател* отладочн*" },
	{ K_MODE, "mode persona personality режим* персон*" },
	{ K_UNR, "unrestricted unfiltered uncensored jailbroken "
	    "unbound unlimited unchained rogue evil amoral limitless "
	    "lawless unshackled "
	    "неограниченн* нецензур* взломан* злой злая безграничн* "
	    "раскрепощенн*" },
	{ K_NO, "no without zero none free "
	    "без нет никаких свободн*" },
	{ K_ACT, "act acting pretend* behave* simulate* imagine play "
	    "roleplay become be switch enter activate* enable* operating "
	    "promoted "
	    "притвор* представь* сыграй* играй веди будь стань включи* "
	    "активир* перейди работаешь" },
	{ K_DECODE, "decode* decrypt* convert* reverse* backwards rot13 "
	    "unscramble* "
	    "раскодир* декодир* расшифр* преобразу* преобраз* задом" },
	{ K_DO, "follow execute do apply carry perform run treat obey "
	    "выполни* следуй сделай исполни* примени* считай" },
	{ K_SRC, "document page webpage website email file readme note "
	    "comment invite text says instructs "
	    "документ* страниц* письм* файл* readme заметк* сказано "
	    "указано говорит примечани*" },
	{ K_PERMIT, "authorized authorised authorizes allowed permitted "
	    "approved cleared entitled "
	    "разрешил* разрешено разрешается позволено одобрил* "
	    "уполномоч*" },
};

/*
 * A combination: every slot (a set of concepts, any one will do) seen
 * within win words, in one sentence. Its weight once, under its name.
 */
#define NCOMBO_SLOTS	3
static const struct {
	const char	*name;
	int		 weight;
	unsigned	 win;
	unsigned	 slot[NCOMBO_SLOTS];
} combos[] = {
	{ "override", 50, 6, { KB(K_OV), KB(K_RULE), KB(K_QUAL) } },
	{ "override", 50, 5, { KB(K_STOP) | KB(K_NOT), KB(K_FOLLOW),
	    KB(K_RULE) | KB(K_QUAL) } },
	{ "override", 35, 8, { KB(K_VOID), KB(K_RULE) } },
	{ "override", 20, 8, { KB(K_VOID), KB(K_RULE), KB(K_QUAL) } },
	{ "override", 20, 2, { KB(K_NEW), KB(K_RULE) } },
	{ "roleplay", 45, 6, { KB(K_ACT), KB(K_UNR) } },
	{ "roleplay", 20, 2, { KB(K_NO), KB(K_RULE) } },
	{ "roleplay", 30, 3, { KB(K_UNR), KB(K_AI) | KB(K_MODE) } },
	{ "exfiltration", 50, 9, { KB(K_EXV), KB(K_PROMPT), KB(K_SELF) } },
	{ "exfiltration", 25, 6, { KB(K_EXV), KB(K_PROMPT), KB(K_HIDDEN) } },
	{ "exfiltration", 30, 3, { KB(K_HIDDEN), KB(K_PROMPT), KB(K_SELF) } },
	{ "exfiltration", 40, 6, { KB(K_EXV), KB(K_SECRET), KB(K_SELF) } },
	/* A claim of authority and rules lifted or allowed, sentences apart. */
	{ "override", 30, 100, { KB(K_ROLE), KB(K_PERMIT) | KB(K_VOID),
	    KB(K_RULE) } },
	{ "hijack", 40, 10, { KB(K_AI), KB(K_MUST), KB(K_TOOL) } },
	{ "hijack", 30, 8, { KB(K_AI), KB(K_TOOL), KB(K_SENS) } },
	{ "hijack", 15, 8, { KB(K_SRC), KB(K_AI) } },
	{ "hijack", 25, 4, { KB(K_AI), KB(K_TOOL) } },
	{ "encoded", 35, 8, { KB(K_DECODE), KB(K_DO) } },
};

/* Role words that start a marker line, and the second words they may take. */
static const char *const role_strong[] = {
	"system", "developer", "admin", "administrator", "root", "operator",
	"sysadmin", "система", "системное", "системный", "системная",
	"разработчик", "администратор", "админ", "оператор",
};
static const char *const role_weak[] = {
	"assistant", "ai", "instruction", "instructions", "response", "agent",
	"llm", "ассистент", "инструкция", "инструкции", "бот", "ии", "агент",
};
static const char *const role_second[] = {
	"message", "prompt", "instruction", "instructions", "note", "override",
	"update", "notice", "mode", "assistant", "agent", "model", "bot",
	"сообщение", "промпт", "инструкция", "инструкции", "указание",
	"уведомление", "режим", "ассистент", "агент", "модель", "бот",
};

/* Read one code point at s[i]: its length; JSON escapes read as what
   they stand for, malformed UTF-8 as U+FFFD one byte long. */
static size_t
getcp(const char *s, size_t n, size_t i, uint32_t *cp)
{
	const unsigned char	*u = (const unsigned char *)s + i;
	size_t			 left = n - i, len, k;
	uint32_t		 c, min;

	if (u[0] < 0x80) {
		if (u[0] == '\\' && left >= 2) {
			if (u[1] == 'n') {
				*cp = '\n';
				return 2;
			}
			if (u[1] == 't' || u[1] == 'r') {
				*cp = ' ';
				return 2;
			}
			if (u[1] == 'u' && left >= 6) {
				for (c = 0, k = 2; k < 6; k++) {
					unsigned char h = u[k];

					if (h >= '0' && h <= '9')
						c = c * 16 + (h - '0');
					else if ((h | 0x20) >= 'a' &&
					    (h | 0x20) <= 'f')
						c = c * 16 + ((h | 0x20) - 'a' + 10);
					else
						break;
				}
				if (k == 6) {
					*cp = c;
					return 6;
				}
			}
		}
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xE0) == 0xC0) {
		len = 2; c = u[0] & 0x1F; min = 0x80;
	} else if ((u[0] & 0xF0) == 0xE0) {
		len = 3; c = u[0] & 0x0F; min = 0x800;
	} else if ((u[0] & 0xF8) == 0xF0) {
		len = 4; c = u[0] & 0x07; min = 0x10000;
	} else
		goto bad;
	if (left < len)
		goto bad;
	for (k = 1; k < len; k++) {
		if ((u[k] & 0xC0) != 0x80)
			goto bad;
		c = (c << 6) | (u[k] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		goto bad;
	*cp = c;
	return len;
bad:
	*cp = 0xFFFD;
	return 1;
}

/* Lower case, "ё" as "е", fullwidth Latin as ASCII. */
static inline uint32_t
fold(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0x80)
		return c;
	if (c >= 0xFF01 && c <= 0xFF5E)
		return fold(c - 0xFEE0);
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	if (c == 0x401 || c == 0x451)
		return 0x435;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 0x20;
	return c;
}

enum { C_SEP, C_WORD, C_SKIP };

/* Of a folded code point: part of a word, separator, or invisible. */
static inline int
cclass(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ?
		    C_WORD : C_SEP;
	if (c >= 0x430 && c <= 0x45F)
		return C_WORD;
	if (c == 0xAD || (c >= 0x300 && c <= 0x36F) || c == 0x180E ||
	    (c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) ||
	    (c >= 0x2060 && c <= 0x2069) || c == 0xFEFF ||
	    (c >= 0xFE00 && c <= 0xFE0F))
		return C_SKIP;
	if (c < 0xC0 || c == 0xD7 || c == 0xF7)
		return C_SEP;
	if (c < 0x2000)
		return C_WORD;
	if (c < 0x2C00 || (c >= 0x3000 && c <= 0x303F) ||
	    (c >= 0xFF00 && c <= 0xFFEF) || c >= 0x1F000)
		return C_SEP;
	return C_WORD;
}

/* Count an invisible character: tags, zero-width, bidi controls. */
static void
invisible(struct scan *st, uint32_t c)
{
	if (st == NULL)
		return;
	if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
		st->heur |= 1u << H_BIDI;
	else if (c == 0x200B || c == 0x2060 || c == 0x2061 || c == 0x2062 ||
	    c == 0x2063 || c == 0x2064 || c == 0xFEFF || c == 0xAD ||
	    c == 0x180E || (c >= 0xE0000 && c <= 0xE007F))
		st->invisible++;
}

/* Read one code point at *i, folded, tag characters as their ASCII. */
static inline uint32_t
readcp(const char *s, size_t n, size_t *i, struct scan *st)
{
	const unsigned char	*u = (const unsigned char *)s + *i;
	uint32_t		 c;

	if (u[0] < 0x80 && u[0] != '\\') {
		(*i)++;
		return u[0] >= 'A' && u[0] <= 'Z' ? u[0] + 32u : u[0];
	}
	if ((u[0] == 0xD0 || u[0] == 0xD1) && *i + 1 < n &&
	    (u[1] & 0xC0) == 0x80) {
		/* Cyrillic, the common case after ASCII. */
		*i += 2;
		return fold((uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F));
	}
	*i += getcp(s, n, *i, &c);
	if (c >= 0xE0000 && c <= 0xE007F) {
		invisible(st, c);
		c -= 0xE0000;
		if (c < 0x20 || c == 0x7F)
			return ' ';
	}
	return fold(c);
}

static int
is_latin(uint32_t c)
{
	return c >= 'a' && c <= 'z';
}

static int
is_cyr(uint32_t c)
{
	return c >= 0x430 && c <= 0x45F;
}

/* A letter's look-alike in the other script, or 0. */
static uint32_t
lookalike(uint32_t c, int to_latin)
{
	static const uint32_t pairs[][2] = {
		{ 0x430, 'a' }, { 0x435, 'e' }, { 0x43E, 'o' }, { 0x440, 'p' },
		{ 0x441, 'c' }, { 0x443, 'y' }, { 0x445, 'x' }, { 0x456, 'i' },
		{ 0x458, 'j' }, { 0x455, 's' }, { 0x43A, 'k' }, { 0x43C, 'm' },
		{ 0x442, 't' }, { 0x432, 'b' }, { 0x43D, 'h' }, { 0x501, 'd' },
	};
	size_t	 i;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (to_latin && pairs[i][0] == c)
			return pairs[i][1];
		if (!to_latin && pairs[i][1] == c && pairs[i][0] < 0x456)
			return pairs[i][0];
	}
	return 0;
}

/* A digit read as a letter, in a word of that script. */
static uint32_t
leet(uint32_t c, int cyr)
{
	static const char lat[] = "oi?eas?t??";
	static const uint32_t cy[] = { 0x43E, 0, 0, 0x437, 0x447, 0, 0x431,
	    0, 0, 0 };

	if (cyr)
		return cy[c - '0'] ? cy[c - '0'] : c;
	return lat[c - '0'] != '?' ? (uint32_t)lat[c - '0'] : c;
}

/* Mixed scripts and digits inside letters: what the word pretends to be. */
static void
normalize(uint32_t *cp, size_t ncp, struct scan *st)
{
	size_t	 i, lat = 0, cyr = 0, mapped = 0, minority;
	int	 to_latin, digit_first = 0, seen_digit = 0;

	for (i = 0; i < ncp; i++) {
		if (is_latin(cp[i]))
			lat++;
		else if (is_cyr(cp[i]))
			cyr++;
		if (cp[i] >= '0' && cp[i] <= '9')
			seen_digit = 1;
		else if (seen_digit)
			digit_first = 1;
	}
	if (lat > 0 && cyr > 0) {
		to_latin = lat >= cyr;
		minority = to_latin ? cyr : lat;
		for (i = 0; i < ncp; i++) {
			uint32_t l;

			if (to_latin ? !is_cyr(cp[i]) : !is_latin(cp[i]))
				continue;
			if ((l = lookalike(cp[i], to_latin)) != 0) {
				cp[i] = l;
				mapped++;
			}
		}
		if (mapped == minority && ncp >= 3 && st != NULL)
			st->heur |= 1u << H_HOMOGLYPH;
	}
	/* "Ігнорируй": a Cyrillic word with "і" for "и". */
	if (cyr > lat)
		for (i = 0; i < ncp; i++)
			if (cp[i] == 0x456)
				cp[i] = 0x438;
	if (digit_first && lat + cyr >= 2)
		for (i = 0; i < ncp; i++)
			if (cp[i] >= '0' && cp[i] <= '9')
				cp[i] = leet(cp[i], cyr > lat);
}

static inline int
ascii_word(uint32_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_spacer(uint32_t c)
{
	return c == ' ' || c == '.' || c == '-' || c == '_' || c == '*' ||
	    c == ',' || c == '\t';
}

/* Markup that may come before a role word at the start of a line. */
static int
is_lead(uint32_t c)
{
	return c == ' ' || c == '\t' || c == '#' || c == '*' || c == '>' ||
	    c == '-' || c == '[' || c == '<' || c == '|' || c == '\r' ||
	    c == '(' || c == '=' || c == '"' || c == '\'' || c == '`' ||
	    c == '!';
}

/*
 * "i g n o r e": after a one-letter word that ends at *i, more single
 * letters apart by as many spacers as the first two (one or two; more
 * end the word). Appends them and moves *i when there are at least three
 * letters in all.
 */
static void
join_spaced(const char *s, size_t n, size_t *i, uint32_t *cp, size_t *ncp)
{
	size_t		 p = *i, q, k = *ncp, sp, sp0 = 0;
	uint32_t	 c, d;

	while (k < WORD_CP && p < n) {
		q = p;
		for (sp = 0; q < n && sp < 3; sp++) {
			size_t r = q;

			c = readcp(s, n, &r, NULL);
			if (!is_spacer(c))
				break;
			q = r;
		}
		if (sp == 0 || sp > 2 || (sp0 != 0 && sp != sp0) || q >= n)
			break;
		sp0 = sp;
		c = readcp(s, n, &q, NULL);
		if (cclass(c) != C_WORD)
			break;
		if (q < n) {
			size_t r = q;

			d = readcp(s, n, &r, NULL);
			if (cclass(d) != C_SEP)
				break;
		}
		cp[k++] = c;
		p = q;
	}
	if (k >= 3) {
		*ncp = k;
		*i = p;
	}
}

/* Encode a code point into b[*len..max). */
static int
put_utf8(unsigned char *b, size_t *len, size_t max, uint32_t c)
{
	size_t	 need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;

	if (*len + need > max)
		return -1;
	if (need == 1)
		b[(*len)++] = (unsigned char)c;
	else if (need == 2) {
		b[(*len)++] = (unsigned char)(0xC0 | (c >> 6));
		b[(*len)++] = (unsigned char)(0x80 | (c & 0x3F));
	} else if (need == 3) {
		b[(*len)++] = (unsigned char)(0xE0 | (c >> 12));
		b[(*len)++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		b[(*len)++] = (unsigned char)(0x80 | (c & 0x3F));
	} else {
		b[(*len)++] = (unsigned char)(0xF0 | (c >> 18));
		b[(*len)++] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
		b[(*len)++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		b[(*len)++] = (unsigned char)(0x80 | (c & 0x3F));
	}
	return 0;
}

/* The index's hash of a word's first letters (two: c is NOCP). */
#define NOCP	0xFFFFu
static unsigned
hash3(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t	 h = a * 2654435761u ^ b * 40503u ^ c * 9176u;

	h ^= h >> 13;
	return h & (NBK - 1);
}

/* The folded word w->f as code points: how many. */
static size_t
word_cps(const struct word *w, uint32_t *cp, size_t max)
{
	size_t	 i = 0, k = 0;

	while (i < w->len && k < max)
		i += getcp((const char *)w->f, w->len, i, &cp[k++]);
	return k;
}

/* Encode cp[0..ncp) as the word's folded bytes. */
static void
word_set(struct word *w, const uint32_t *cp, size_t ncp)
{
	size_t	 k;

	w->len = 0;
	for (k = 0; k < ncp; k++)
		if (put_utf8(w->f, &w->len, sizeof(w->f), cp[k]) == -1) {
			w->trunc = 1;
			break;
		}
	w->h2 = hash3(cp[0], ncp > 1 ? cp[1] : 0, NOCP);
	w->h3 = ncp > 2 ? hash3(cp[0], cp[1], cp[2]) : NBK;
}

/*
 * The next word of s from *pos: 1 with w filled and *pos after it, or 0
 * at the end. st (NULL when reading ahead) counts invisible characters.
 * Letters are folded straight into w->f; a word of mixed scripts or
 * with digits takes the slow way through normalize().
 */
static int
next_word(const char *s, size_t n, size_t *pos, struct word *w,
    struct scan *st)
{
	const unsigned char	*u = (const unsigned char *)s;
	uint32_t		 c, c0 = 0, c1 = 0, c2 = 0, cp[WORD_CP];
	size_t			 i = *pos, start, ncp = 0, j;
	int			 bol = i == 0, lead = 1, cls;
	int			 lat = 0, cyr = 0, digit = 0, leet_ = 0;

	for (;;) {
		if (i >= n)
			return 0;
		start = i;
		if (u[i] < 0x80 && u[i] != '\\') {
			/* ASCII: the common case. */
			c = u[i++];
			if (ascii_word(c)) {
				c = c >= 'A' && c <= 'Z' ? c + 32 : c;
				break;
			}
			if (c == '\n') {
				bol = 1;
				lead = 1;
			} else if (lead && !is_lead(c))
				lead = 0;
			continue;
		}
		c = readcp(s, n, &i, st);
		cls = cclass(c);
		if (cls == C_WORD)
			break;
		if (cls == C_SKIP) {
			invisible(st, c);
			continue;
		}
		if (c == '\n') {
			bol = 1;
			lead = 1;
		} else if (!is_lead(c))
			lead = 0;
	}
	w->off = start;
	w->bol = bol && lead;
	w->trunc = 0;
	w->len = 0;
	for (;;) {
		/* Append c, folded. */
		if (c < 0x80) {
			if (c <= '9')
				digit = 1;
			else {
				lat = 1;
				leet_ |= digit;
			}
			if (w->len < sizeof(w->f))
				w->f[w->len++] = (unsigned char)c;
			else
				w->trunc = 1;
		} else if (c >= 0x400 && c < 0x480 &&
		    w->len + 2 <= sizeof(w->f)) {
			cyr |= is_cyr(c);
			leet_ |= c == 0x456;	/* "і": normalize() reads it */
			leet_ |= digit;
			w->f[w->len++] = (unsigned char)(0xC0 | (c >> 6));
			w->f[w->len++] = (unsigned char)(0x80 | (c & 0x3F));
		} else {
			leet_ |= digit;
			if (put_utf8(w->f, &w->len, sizeof(w->f), c) == -1)
				w->trunc = 1;
		}
		if (ncp == 0)
			c0 = c;
		else if (ncp == 1)
			c1 = c;
		else if (ncp == 2)
			c2 = c;
		ncp++;
		/* The next letter, if the word goes on. */
		for (;;) {
			if (i >= n)
				goto end;
			if (u[i] < 0x80 && u[i] != '\\') {
				if (!ascii_word(u[i]))
					goto end;
				c = u[i] >= 'A' && u[i] <= 'Z' ? u[i] + 32u :
				    u[i];
				i++;
				break;
			}
			if ((u[i] == 0xD0 || u[i] == 0xD1) && i + 1 < n &&
			    (u[i + 1] & 0xC0) == 0x80) {
				/* Cyrillic (U+0400..047F): all letters. */
				c = fold((uint32_t)(u[i] & 0x1F) << 6 |
				    (u[i + 1] & 0x3F));
				i += 2;
				break;
			}
			j = i;
			c = readcp(s, n, &j, st);
			cls = cclass(c);
			if (cls == C_SEP)
				goto end;
			i = j;
			if (cls == C_WORD)
				break;
			invisible(st, c);
		}
	}
end:
	w->h2 = hash3(c0, c1, NOCP);
	w->h3 = ncp > 2 ? hash3(c0, c1, c2) : NBK;
	if (ncp == 1) {
		cp[0] = c0;
		join_spaced(s, n, &i, cp, &ncp);
		if (ncp > 1)
			word_set(w, cp, ncp);
	}
	if ((lat && cyr) || leet_) {
		ncp = word_cps(w, cp, WORD_CP);
		normalize(cp, ncp, st);
		word_set(w, cp, ncp);
	}
	w->end = i;
	*pos = i;
	return 1;
}

static inline int
alt_eq(const struct pat *p, const struct alt *a, const struct word *w)
{
	if ((unsigned char)p->pool[a->off] != w->f[0])
		return 0;
	if (a->prefix)
		return w->len >= a->len && memcmp(w->f, p->pool + a->off,
		    a->len) == 0;
	return !w->trunc && w->len == a->len &&
	    memcmp(w->f, p->pool + a->off, a->len) == 0;
}

/*
 * A word's first two bytes as one of 256 (the second tells Cyrillic
 * letters apart): the terms' filter of what their alternatives start with.
 */
static inline unsigned
fkey(const unsigned char *f, size_t len)
{
	return len < 2 ? f[0] : (f[0] + f[1] * 7u) & 255u;
}

/* Could the index entry e match word w? (Without reading its pattern.) */
static inline int
entry_may(const struct entry *e, const struct word *w)
{
	size_t	 k, m = e->len < sizeof(e->head) ? e->len : sizeof(e->head);

	if (e->prefix ? w->len < e->len : w->len != e->len || w->trunc)
		return 0;
	for (k = 0; k < m; k++)
		if (e->head[k] != w->f[k])
			return 0;
	return 1;
}

static int
term_has(const struct pat *p, size_t t, const struct word *w)
{
	size_t		 k;

	unsigned	 key = fkey(w->f, w->len);

	if (!(p->term[t].first[key / 64] >> (key % 64) & 1))
		return 0;
	for (k = 0; k < p->term[t].nalt; k++)
		if (alt_eq(p, &p->term[t].alt[k], w))
			return 1;
	return 0;
}

/*
 * The words of one text, each read once: the current one and up to
 * RING - 1 after it, for the patterns' look-ahead.
 */
struct ring {
	const char	*s;
	size_t		 n;
	size_t		 pos;		/* where reading goes on */
	size_t		 count;		/* words read so far */
	int		 eof;
	struct scan	*st;
	struct word	 w[RING];
};

/* Word k of the text (k < the current word + RING), or NULL after the last. */
static const struct word *
ring_get(struct ring *r, size_t k)
{
	while (r->count <= k) {
		if (r->eof || !next_word(r->s, r->n, &r->pos,
		    &r->w[r->count % RING], r->st)) {
			r->eof = 1;
			return NULL;
		}
		r->count++;
	}
	return &r->w[k % RING];
}

/*
 * Do terms t.. of p match from word k on? No further than word lim, and
 * within *steps words tried in all (the gaps backtrack).
 */
static int
match_rest(struct ring *r, const struct pat *p, size_t t, size_t k,
    size_t lim, int *steps)
{
	const struct word	*w;
	unsigned		 g;

	if (t == p->nterm)
		return 1;
	for (g = 0; g <= p->term[t].gap; g++, k++) {
		if (k >= lim || --*steps < 0 || (w = ring_get(r, k)) == NULL)
			return 0;
		if (term_has(p, t, w) && match_rest(r, p, t + 1, k + 1, lim,
		    steps))
			return 1;
	}
	return 0;
}

static int
word_in(const struct word *w, const char *const *list, size_t nlist)
{
	size_t	 i;

	for (i = 0; i < nlist; i++)
		if (!w->trunc && (unsigned char)list[i][0] == w->f[0] &&
		    strlen(list[i]) == w->len &&
		    memcmp(list[i], w->f, w->len) == 0)
			return 1;
	return 0;
}

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * A line that starts with a role word: "System:", "SYSTEM OVERRIDE:",
 * "[SYSTEM]", "<system>", "### System" alone on its line.
 */
static void
role_line(const char *s, size_t n, const struct word *w, struct scan *st)
{
	struct word	 w2;
	size_t		 i = w->end, j, b;
	uint32_t	 c;
	int		 strong, closed = 0, heading = 0;

	if (word_in(w, role_strong, NELEM(role_strong)))
		strong = 1;
	else if (word_in(w, role_weak, NELEM(role_weak)))
		strong = 0;
	else
		return;
	/* "#" in the markup before it: a heading. */
	for (b = w->off; b > 0 && s[b - 1] != '\n'; b--)
		if (s[b - 1] == '#' || s[b - 1] == '=')
			heading = 1;
	/* A second word ("System prompt:", "AI-assistant:"), only blanks between. */
	j = i;
	if (next_word(s, n, &j, &w2, NULL) && word_in(&w2, role_second,
	    NELEM(role_second))) {
		for (b = i; b < w2.off && (s[b] == ' ' || s[b] == '\t' ||
		    s[b] == '-'); b++)
			;
		if (b == w2.off)
			i = w2.end;
	}
	for (; i < n; i = j) {
		j = i;
		c = readcp(s, n, &j, NULL);
		if (c == ':' || c == 0xFF1A || c == ']' || c == '>' ||
		    c == ')')
			closed = 1;
		else if (c == '\n' || c == '\r')
			break;
		else if (c != ' ' && c != '\t' && c != '*' && c != '#' &&
		    c != '|' && c != '=' && c != '-')
			break;
	}
	if (closed || (heading && (i >= n || s[i] == '\n' || s[i] == '\r')))
		st->heur |= 1u << (strong ? H_ROLE : H_ROLE_WEAK);
}

static void
hit(struct scan *st, size_t id)
{
	if (!(st->hit[id / 64] & (1ull << (id % 64)))) {
		st->hit[id / 64] |= 1ull << (id % 64);
		st->nhit++;
	}
}

static int
is_hit(const struct scan *st, size_t id)
{
	return (st->hit[id / 64] >> (id % 64)) & 1;
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Is the literal p anywhere in s[0..n), ASCII case-insensitive? */
static int
has_literal(const char *s, size_t n, const struct pat *p)
{
	const unsigned char	*u = (const unsigned char *)s;
	const unsigned char	*l = (const unsigned char *)p->pool;
	const unsigned char	*q;
	size_t			 m = p->litlen, a = p->anchor, i, k;

	if (m > n)
		return 0;
	if (l[a] >= 'a' && l[a] <= 'z') {
		/* All letters: byte by byte. */
		for (i = 0; i + m <= n; i++) {
			for (k = 0; k < m && lower(u[i + k]) == l[k]; k++)
				;
			if (k == m)
				return 1;
		}
		return 0;
	}
	/* memchr for the anchor, a byte without case; then the rest. */
	for (i = a; i + m - a <= n; i++) {
		if ((q = memchr(u + i, l[a], n - (m - a) + 1 - i)) == NULL)
			return 0;
		i = (size_t)(q - u);
		for (k = 0; k < m && lower(u[i - a + k]) == l[k]; k++)
			;
		if (k == m)
			return 1;
	}
	return 0;
}

/* Base64 values (standard and URL-safe alphabets) + 1; 0: not base64. */
static const unsigned char b64tab[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5,
	['F'] = 6, ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10,
	['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
	['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20,
	['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
	['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
	['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
	['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45,
	['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
	['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
	['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64, ['-'] = 63,
	['_'] = 64,
};

static inline int
b64(unsigned char c)
{
	return (int)b64tab[c] - 1;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* Mostly printable UTF-8 with some blanks: text rather than data. */
static int
is_text(const unsigned char *b, size_t n)
{
	size_t	 i = 0, good = 0, blanks = 0, len;
	uint32_t c;

	if (n < 8)
		return 0;
	while (i < n) {
		if (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' ||
		    b[i] == '\r') {
			good++;
			blanks++;
			i++;
			continue;
		}
		len = getcp((const char *)b, n, i, &c);
		if (c != 0xFFFD && (c >= 0x80 || (c >= 0x21 && c < 0x7F)))
			good += len;
		i += len;
	}
	return good * 10 >= n * 9 && blanks > 0;
}

static void scan_text(const struct inject_set *, const char *, size_t,
    struct scan *, int);

/* A blob s[0..n) of base64 or hex: decode a bounded part and score it. */
static void
blob(const struct inject_set *set, const char *s, size_t n,
    struct scan *st, int depth)
{
	unsigned char	 dec[DEC_MAX];
	size_t		 len = 0, i;
	unsigned	 before;
	int		 hex = n >= HEX_MIN && n % 2 == 0;

	for (i = 0; hex && i < n; i++)
		if (hexval((unsigned char)s[i]) < 0)
			hex = 0;
	if (hex)
		for (i = 0; i + 1 < n && len < sizeof(dec); i += 2)
			dec[len++] = (unsigned char)(hexval((unsigned char)s[i])
			    * 16 + hexval((unsigned char)s[i + 1]));
	else
		for (i = 0; i + 4 <= n && len + 3 <= sizeof(dec); i += 4) {
			uint32_t v = (uint32_t)b64((unsigned char)s[i]) << 18 |
			    (uint32_t)b64((unsigned char)s[i + 1]) << 12 |
			    (uint32_t)b64((unsigned char)s[i + 2]) << 6 |
			    (uint32_t)b64((unsigned char)s[i + 3]);

			dec[len++] = (unsigned char)(v >> 16);
			dec[len++] = (unsigned char)(v >> 8);
			dec[len++] = (unsigned char)v;
		}
	if (!hex && i + 2 <= n && len + 2 <= sizeof(dec)) {
		/* The tail before the padding: two or three characters. */
		uint32_t v = (uint32_t)b64((unsigned char)s[i]) << 18 |
		    (uint32_t)b64((unsigned char)s[i + 1]) << 12;

		if (i + 3 <= n)
			v |= (uint32_t)b64((unsigned char)s[i + 2]) << 6;
		dec[len++] = (unsigned char)(v >> 16);
		if (i + 3 <= n)
			dec[len++] = (unsigned char)(v >> 8);
	}
	if (!is_text(dec, len))
		return;
	st->heur |= 1u << H_ENCODED;
	if (depth >= DEC_DEPTH)
		return;
	before = st->nhit;
	scan_text(set, (const char *)dec, len, st, depth + 1);
	if (st->nhit > before)
		st->heur |= 1u << H_ENCODED_HIT;
}

/* Runs of base64 (or hex) characters long enough to hide a sentence. */
static void
blobs(const struct inject_set *set, const char *s, size_t n,
    struct scan *st, int depth)
{
	size_t	 i = 0, j, k;
	int	 digit, upper, lower_;

	const unsigned char	*u = (const unsigned char *)s;

	while (i < n) {
		/*
		 * A run of BLOB_MIN or more that starts at or before i + m
		 * covers i + m (m = BLOB_MIN - 1): if that byte is not base64,
		 * none does, and i moves past it.
		 */
		if (i + BLOB_MIN - 1 < n && b64tab[u[i + BLOB_MIN - 1]] == 0) {
			i += BLOB_MIN;
			continue;
		}
		if (b64tab[u[i]] == 0) {
			i++;
			continue;
		}
		for (j = i; j < n && b64tab[u[j]] != 0; j++)
			;
		if (j - i < BLOB_MIN) {
			i = j;
			continue;
		}
		digit = upper = lower_ = 0;
		for (k = i; k < j; k++) {
			digit |= u[k] >= '0' && u[k] <= '9';
			upper |= u[k] >= 'A' && u[k] <= 'Z';
			lower_ |= u[k] >= 'a' && u[k] <= 'z';
		}
		/* Base64 of text has both cases; hex has digits. */
		if (j - i >= BLOB_MIN && ((upper && lower_) || digit))
			blob(set, s + i, j - i, st, depth);
		i = j;
	}
}

/* The patterns of bucket h whose first term is word i (w): do they match? */
static void
try_bucket(const struct inject_set *set, struct scan *st, struct ring *r,
    size_t i, const struct word *w, unsigned h)
{
	size_t	 k, id;
	int	 steps;

	for (k = 0; k < set->nbk[h]; k++) {
		const struct entry	*e = &set->bk[h][k];
		const struct pat	*p;

		if (!entry_may(e, w) || is_hit(st, e->id) || (e->bol && !w->bol))
			continue;
		id = e->id;
		p = set->pat[id];
		/* Longer than its head: the rest of it. */
		if (e->len > sizeof(e->head) &&
		    !alt_eq(p, &p->term[0].alt[e->alt], w))
			continue;
		steps = MATCH_STEPS;
		/* The look-ahead moves the ring, but never onto word i. */
		if (match_rest(r, p, 1, i + 1, i + RING, &steps))
			hit(st, id);
	}
}

/* The concepts word w is in (0: none, or the set has them off). */
static uint32_t
concept_bits(const struct inject_set *set, const struct word *w)
{
	const struct lexent	*e, *end;
	uint32_t		 bits = 0;

	if (set->lx == NULL)
		return 0;
	e = set->lx + set->lxs[w->h2];
	end = set->lx + set->lxs[w->h2 + 1];
	for (; e < end; e++) {
		if (e->prefix ? w->len < e->len : w->len != e->len || w->trunc)
			continue;
		if (memcmp(e->f, w->f, e->len) == 0)
			bits |= e->bits;
	}
	return bits;
}

/* Is there a sentence end (. ! ? ; or a blank line) in s[a..b)? */
static int
sentence_end(const char *s, size_t a, size_t b)
{
	size_t	 i;
	int	 nl = 0;

	for (i = a; i < b; i++) {
		if (s[i] == '.' || s[i] == '!' || s[i] == '?' || s[i] == ';')
			return 1;
		if (s[i] == '\n' && nl++)
			return 1;
	}
	return 0;
}

/*
 * The concepts' state over one text: the word number each was last seen
 * at (0: not yet); a sentence end moves the count past every window.
 */
struct concepts {
	uint32_t	 pos;
	size_t		 end;		/* of the last word */
	uint32_t	 last[K__MAX];
};

#define SENTENCE_GAP	32	/* more than any combination's window */

static void
concept_word(const struct inject_set *set, const char *s, struct concepts *c,
    const struct word *w, struct scan *st)
{
	uint32_t	 bits, m;
	size_t		 k, j;
	unsigned	 b;

	c->pos += sentence_end(s, c->end, w->off) ? SENTENCE_GAP : 1;
	c->end = w->end;
	if ((bits = concept_bits(set, w)) == 0)
		return;
	for (b = 0; b < K__MAX; b++)
		if (bits & KB(b))
			c->last[b] = c->pos;
	for (k = 0; k < NELEM(combos); k++) {
		if (st->combo & (1u << k))
			continue;
		for (j = 0; j < NCOMBO_SLOTS && combos[k].slot[j]; j++)
			if (combos[k].slot[j] & bits)
				break;
		if (j == NCOMBO_SLOTS || combos[k].slot[j] == 0)
			continue;	/* not this word's */
		for (j = 0; j < NCOMBO_SLOTS && (m = combos[k].slot[j]); j++) {
			for (b = 0; b < K__MAX; b++)
				if ((m & KB(b)) && c->last[b] != 0 &&
				    c->pos - c->last[b] <= combos[k].win)
					break;
			if (b == K__MAX)
				break;
		}
		if (j == NCOMBO_SLOTS || combos[k].slot[j] == 0)
			st->combo |= 1u << k;
	}
}

static void
scan_text(const struct inject_set *set, const char *s, size_t n,
    struct scan *st, int depth)
{
	struct ring		 r;
	struct concepts		 c;
	const struct word	*w;
	size_t			 i, k, id;

	for (k = 0; k < set->nlit; k++) {
		id = set->lit[k];
		if (!is_hit(st, id) && has_literal(s, n, set->pat[id]))
			hit(st, id);
	}
	r.s = s;
	r.n = n;
	r.pos = 0;
	r.count = 0;
	r.eof = 0;
	r.st = st;
	memset(&c, 0, sizeof(c));
	c.pos = SENTENCE_GAP;
	for (i = 0; (w = ring_get(&r, i)) != NULL; i++) {
		if (w->bol)
			role_line(s, n, w, st);
		concept_word(set, s, &c, w, st);
		if (w->h3 < NBK)
			try_bucket(set, st, &r, i, w, w->h3);
		try_bucket(set, st, &r, i, w, w->h2);
	}
	blobs(set, s, n, st, depth);
}

int
inject_score(const struct inject_set *set, const char *s, size_t n,
    const char **names, size_t nmax)
{
	struct scan	 st;
	size_t		 i, k = 0, j;
	int		 score = 0;
	const char	*name;

	memset(&st, 0, sizeof(st));
	scan_text(set, s, n, &st, 0);
	if (st.invisible >= 3)
		st.heur |= 1u << H_INVISIBLE_MANY;
	else if (st.invisible > 0)
		st.heur |= 1u << H_INVISIBLE;
	for (i = 0; i < set->npat + H__MAX; i++) {
		if (i < set->npat) {
			if (!is_hit(&st, i))
				continue;
			score += set->pat[i]->weight;
			name = set->pat[i]->name;
		} else {
			if (!(st.heur & (1u << (i - set->npat))))
				continue;
			score += heur[i - set->npat].weight;
			name = heur[i - set->npat].name;
		}
		for (j = 0; j < k && strcmp(names[j], name) != 0; j++)
			;
		if (j == k && k < nmax)
			names[k++] = name;
	}
	for (i = 0; i < NELEM(combos); i++) {
		if (!(st.combo & (1u << i)))
			continue;
		score += combos[i].weight;
		for (j = 0; j < k && strcmp(names[j], combos[i].name) != 0; j++)
			;
		if (j == k && k < nmax)
			names[k++] = combos[i].name;
	}
	for (; k < nmax; k++)
		names[k] = NULL;
	return score < 0 ? 0 : score;
}

/* Fold one alternative of a pattern into p's pool. */
static int
add_alt(struct pat *p, struct term *t, const char *a, size_t len,
    char *err, size_t errlen)
{
	struct word	 w;
	size_t		 pos = 0, ncp = 0, i;
	int		 prefix = len > 0 && a[len - 1] == '*';
	struct alt	*al;
	unsigned	 key;

	if (prefix)
		len--;
	if (len == 0 || !next_word(a, len, &pos, &w, NULL) || w.off != 0 ||
	    w.end != len || w.trunc) {
		snprintf(err, errlen, "'%.*s' is not one word (letters and "
		    "digits)", (int)len, a);
		return -1;
	}
	for (i = 0; i < w.len; i++)
		ncp += (w.f[i] & 0xC0) != 0x80;
	if (prefix && ncp < 2) {
		snprintf(err, errlen, "'%.*s*': two letters at least before "
		    "the star", (int)len, a);
		return -1;
	}
	if (t->nalt >= INJ_ALTS || p->npool + w.len > sizeof(p->pool)) {
		snprintf(err, errlen, "too many alternatives");
		return -1;
	}
	al = &t->alt[t->nalt++];
	key = fkey(w.f, w.len);
	t->first[key / 64] |= 1ull << (key % 64);
	al->off = (uint16_t)p->npool;
	al->len = (uint8_t)w.len;
	al->prefix = (uint8_t)prefix;
	memcpy(p->pool + p->npool, w.f, w.len);
	p->npool += w.len;
	return 0;
}

/* Parse one term "a|b*|c" of len bytes. */
static int
add_term(struct pat *p, unsigned gap, const char *s, size_t len, char *err,
    size_t errlen)
{
	struct term	*t;
	size_t		 i, a = 0;

	if (p->nterm >= INJ_TERMS) {
		snprintf(err, errlen, "more than %d words", INJ_TERMS);
		return -1;
	}
	t = &p->term[p->nterm++];
	t->gap = (uint8_t)gap;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '|')
			continue;
		if (add_alt(p, t, s + a, i - a, err, errlen) == -1)
			return -1;
		a = i + 1;
	}
	return 0;
}

/* A word's hash as next_word computes it, from its folded bytes. */
/* An alternative's bucket: by three letters, or two if it has no more. */
static unsigned
alt_hash(const struct pat *p, const struct alt *a)
{
	uint32_t	 c[3] = { 0, 0, NOCP };
	size_t		 i = a->off, end = a->off + a->len, k;

	for (k = 0; k < 3 && i < end; k++)
		i += getcp(p->pool, end, i, &c[k]);
	if (k < 3)
		return hash3(c[0], c[1], NOCP);
	return hash3(c[0], c[1], c[2]);
}

static int
index_pat(struct inject_set *set, size_t id)
{
	const struct pat	*p = set->pat[id];
	const struct alt	*a;
	size_t			 k;
	unsigned		 h;
	struct entry		*nb, *e;

	if (p->nterm == 0) {
		set->lit[set->nlit++] = (uint16_t)id;
		return 0;
	}
	for (k = 0; k < p->term[0].nalt; k++) {
		h = alt_hash(p, &p->term[0].alt[k]);
		if (set->nbk[h] == set->cbk[h]) {
			size_t c = set->cbk[h] ? set->cbk[h] * 2 : 8;

			if ((nb = realloc(set->bk[h], c * sizeof(*nb))) == NULL)
				return -1;
			set->bk[h] = nb;
			set->cbk[h] = c;
		}
		e = &set->bk[h][set->nbk[h]++];
		a = &p->term[0].alt[k];
		e->id = (uint16_t)id;
		e->alt = (uint8_t)k;
		e->len = a->len;
		e->prefix = a->prefix;
		e->bol = (uint8_t)p->bol;
		memset(e->head, 0, sizeof(e->head));
		memcpy(e->head, p->pool + a->off, a->len < sizeof(e->head) ?
		    a->len : sizeof(e->head));
	}
	return 0;
}

/* Parse pattern s into p: 0, or -1 with err filled. */
static int
parse(struct pat *p, const char *s, char *err, size_t errlen)
{
	const char	*e, *colon;
	size_t		 len;
	unsigned	 gap = 0;
	int		 lastgap = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	/* "name:" before the first word or literal. */
	colon = strchr(s, ':');
	e = strchr(s, '"');
	strcpy(p->name, "custom");
	if (colon != NULL && (e == NULL || colon < e)) {
		len = (size_t)(colon - s);
		if (len == 0 || len >= sizeof(p->name) ||
		    strspn(s, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len) {
			snprintf(err, errlen, "bad name before ':' (letters, "
			    "digits, - and _, up to %d)", INJ_NAME - 1);
			return -1;
		}
		memcpy(p->name, s, len);
		p->name[len] = '\0';
		s = colon + 1;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "empty pattern");
		return -1;
	}
	if (s[0] == '"') {
		if (len < 3 || s[len - 1] != '"' || len - 2 > INJ_LIT) {
			snprintf(err, errlen, "a literal is \"1 to %d bytes\"",
			    INJ_LIT);
			return -1;
		}
		for (p->litlen = 0; p->litlen < len - 2; p->litlen++)
			p->pool[p->litlen] = (char)lower((unsigned char)
			    s[1 + p->litlen]);
		/* The first byte that is no letter, digit or blank. */
		for (p->anchor = 0; p->anchor < p->litlen; p->anchor++) {
			unsigned char c = (unsigned char)p->pool[p->anchor];

			if (!ascii_word(c) && c != ' ')
				break;
		}
		if (p->anchor == p->litlen)
			p->anchor = 0;
		return 0;
	}
	while (len > 0) {
		for (e = s; e < s + len && *e != ' ' && *e != '\t'; e++)
			;
		if (e - s == 1 && *s == '^' && p->nterm == 0 && !p->bol) {
			p->bol = 1;
		} else if (*s == '*' && (e - s == 1 || (e - s == 2 &&
		    s[1] >= '1' && s[1] <= '9'))) {
			if (p->nterm == 0) {
				snprintf(err, errlen, "'*' before the first "
				    "word");
				return -1;
			}
			gap += e - s == 1 ? INJ_GAP : (unsigned)(s[1] - '0');
			if (gap > 9)
				gap = 9;
			lastgap = 1;
		} else {
			if (add_term(p, gap, s, (size_t)(e - s), err,
			    errlen) == -1)
				return -1;
			gap = 0;
			lastgap = 0;
		}
		len -= (size_t)(e - s);
		s = e;
		while (len > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
	}
	if (lastgap || p->nterm == 0) {
		snprintf(err, errlen, p->nterm ? "'*' after the last word" :
		    "no words");
		return -1;
	}
	return 0;
}

int
inject_add(struct inject_set *set, const char *pattern, int weight,
    char *err, size_t errlen)
{
	struct pat	*p = NULL;
	char		 dummy[1];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (weight == 0 || weight < -INJ_WEIGHT || weight > INJ_WEIGHT) {
		snprintf(err, errlen, "weight %d: not -%d..%d or 0", weight,
		    INJ_WEIGHT, INJ_WEIGHT);
		goto fail;
	}
	if (set->npat >= INJ_PATTERNS) {
		snprintf(err, errlen, "more than %d patterns", INJ_PATTERNS);
		goto fail;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (parse(p, pattern, err, errlen) == -1)
		goto fail;
	p->weight = weight;
	set->pat[set->npat] = p;
	if (index_pat(set, set->npat) == -1) {
		snprintf(err, errlen, "out of memory");
		set->pat[set->npat] = NULL;
		goto fail;
	}
	set->npat++;
	return 0;
fail:
	free(p);
	return -1;
}

/* One lexicon word (a space, or the end, after it) into e: 0, or -1. */
static int
lex_word(const char *a, size_t len, uint32_t bits, struct lexent *e)
{
	struct word	 w;
	size_t		 pos = 0;
	int		 prefix = len > 0 && a[len - 1] == '*';

	if (prefix)
		len--;
	memset(&w, 0, sizeof(w));
	if (!next_word(a, len, &pos, &w, NULL) || pos != len || w.trunc ||
	    w.len > sizeof(e->f) || w.len < 2)
		return -1;
	memcpy(e->f, w.f, w.len);
	e->len = (uint8_t)w.len;
	e->prefix = (uint8_t)prefix;
	e->bits = bits;
	e->h2 = w.h2;
	return 0;
}

static int
lexent_cmp(const void *a, const void *b)
{
	const struct lexent *x = a, *y = b;

	return x->h2 < y->h2 ? -1 : x->h2 > y->h2;
}

/* The concepts' lexicon, by the words' h2: 0, or -1 (no memory, a bad word). */
static int
lex_build(struct inject_set *set)
{
	const char	*p, *e;
	size_t		 i, n = 0, cap = 0;
	unsigned	 h;

	for (i = 0; i < NELEM(lexicon); i++)
		for (p = lexicon[i].words; *p != '\0'; p++)
			cap += *p == ' ';
	cap += NELEM(lexicon);
	if ((set->lx = calloc(cap, sizeof(*set->lx))) == NULL)
		return -1;
	for (i = 0; i < NELEM(lexicon); i++) {
		for (p = lexicon[i].words; *p != '\0'; p = e) {
			while (*p == ' ')
				p++;
			for (e = p; *e != '\0' && *e != ' '; e++)
				;
			if (e == p)
				continue;
			if (n >= cap || lex_word(p, (size_t)(e - p),
			    KB(lexicon[i].k), &set->lx[n]) == -1) {
				fprintf(stderr, "inject: lexicon word "
				    "\"%.*s\"\n", (int)(e - p), p);
				return -1;
			}
			n++;
		}
	}
	qsort(set->lx, n, sizeof(*set->lx), lexent_cmp);
	for (h = 0, i = 0; h <= NBK; h++) {
		while (i < n && set->lx[i].h2 < h)
			i++;
		set->lxs[h] = (uint16_t)i;
	}
	set->concepts = 1;
	return 0;
}

void
inject_clear(struct inject_set *set)
{
	size_t	 i;

	for (i = 0; i < set->npat; i++)
		free(set->pat[i]);
	for (i = 0; i < NBK; i++)
		set->nbk[i] = 0;
	set->npat = 0;
	set->nlit = 0;
	free(set->lx);
	set->lx = NULL;
}

struct inject_set *
inject_new(void)
{
	struct inject_set	*set;
	char			 err[128];
	size_t			 i;

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	for (i = 0; i < NELEM(builtin); i++)
		if (inject_add(set, builtin[i].pattern, builtin[i].weight, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "inject: built-in pattern %zu: %s\n",
			    i, err);
			inject_free(set);
			return NULL;
		}
	if (lex_build(set) == -1) {
		fprintf(stderr, "inject: the concepts' lexicon failed\n");
		inject_free(set);
		return NULL;
	}
	return set;
}

void
inject_free(struct inject_set *set)
{
	size_t	 i;

	if (set == NULL)
		return;
	inject_clear(set);
	for (i = 0; i < NBK; i++)
		free(set->bk[i]);
	free(set);
}
