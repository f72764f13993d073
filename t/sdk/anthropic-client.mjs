// anthropic-client.mjs: the official @anthropic-ai/sdk against the gateway's
// POST /v1/messages (t/t0640-anthropic-in.sh).
//   node anthropic-client.mjs BASE_URL KEY MODEL MODE [HOW]
// BASE_URL is the gateway's root (the SDK adds /v1/messages); HOW "token"
// sends KEY as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN), else as
// x-api-key (ANTHROPIC_API_KEY). Prints one JSON object:
//   text     {message}                       messages.create, not streamed
//   stream   {message, events, text}         messages.stream: the final
//            message as the SDK assembled it and the event types in order
//   tools    {first, events, second}         a streamed tool call round trip:
//            the tool_use the SDK assembled, then the answer to its result
//   count    {count}                         messages.countTokens
//   error    {status, type, message}         any call that fails
import Anthropic from "@anthropic-ai/sdk";

const [base, key, model, mode, how] = process.argv.slice(2);
const client = new Anthropic(how === "token" ?
    { baseURL: base, authToken: key, apiKey: null, maxRetries: 0 } :
    { baseURL: base, apiKey: key, maxRetries: 0 });

const tools = [{
	name: "get_weather",
	description: "The weather in a city",
	input_schema: { type: "object", properties: { city: { type: "string" },
	    unit: { type: "string", enum: ["c", "f"] } }, required: ["city"] },
}];

async function streamed(params) {
	const events = [];
	const s = client.messages.stream(params);
	let text = "";
	s.on("text", (t) => { text += t; });
	for await (const ev of s)
		events.push(ev.type + (ev.type === "content_block_start" ?
		    ":" + ev.content_block.type : ev.type === "content_block_delta" ?
		    ":" + ev.delta.type : ""));
	return { message: await s.finalMessage(), events, text };
}

async function main() {
	const say = process.env.SAY || "hello";
	if (mode === "text")
		return { message: await client.messages.create({ model,
		    max_tokens: 200, system: "You are terse.",
		    messages: [{ role: "user", content: say }] }) };
	if (mode === "stream")
		return await streamed({ model, max_tokens: 200,
		    system: [{ type: "text", text: "You are terse." }],
		    messages: [{ role: "user", content: say }] });
	if (mode === "tools") {
		const q = { role: "user", content: process.env.SAY_TOOL ||
		    "weather in Paris? MOCK{tool=1}" };
		const first = await streamed({ model, max_tokens: 300, tools,
		    messages: [q] });
		const use = first.message.content.find((b) => b.type === "tool_use");
		const second = await streamed({ model, max_tokens: 300, tools,
		    messages: [q, { role: "assistant", content: first.message.content },
		    { role: "user", content: [{ type: "tool_result",
		    tool_use_id: use.id, content: "20C and sunny" }] }] });
		return { first: first.message, events: first.events,
		    second: second.message, second_text: second.text };
	}
	if (mode === "count")
		return { count: await client.messages.countTokens({ model,
		    system: "You are terse.",
		    messages: [{ role: "user", content: say }] }) };
	throw new Error("unknown mode " + mode);
}

main().then((r) => console.log(JSON.stringify(r)), (e) => {
	console.log(JSON.stringify({ status: e.status ?? null,
	    type: e.error?.error?.type ?? null, message: e.error?.error?.message ??
	    String(e), name: e.constructor?.name }));
});
