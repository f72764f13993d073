// responses.mjs: the Responses API through the gateway with the official
// openai npm client: a plain answer, a streamed one (event types in order),
// a function tool call round trip (function_call -> function_call_output ->
// answer), streamed and not, and previous_response_id refused.
// usage: node responses.mjs BASE_URL API_KEY MODEL
// Prints one JSON object with what each call got.
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const out = {};
const tools = [{
	type: 'function', name: 'get_weather', description: 'Weather in a city',
	parameters: { type: 'object', properties: { city: { type: 'string' } },
	    required: ['city'] },
}];

const plain = await client.responses.create({
	model, instructions: 'Be terse.', input: 'Say hello', max_output_tokens: 50,
});
out.plain = { id: plain.id, object: plain.object, status: plain.status,
    output_text: plain.output_text, usage: plain.usage, model: plain.model,
    types: plain.output.map((i) => i.type) };

const stream = await client.responses.create({
	model, input: [{ role: 'user', content: [{ type: 'input_text',
	    text: 'Count MOCK{chunks=4}' }] }], stream: true,
});
const events = [];
let text = '', completed = null, seqs = [];
for await (const ev of stream) {
	if (events[events.length - 1] !== ev.type)
		events.push(ev.type);
	seqs.push(ev.sequence_number);
	if (ev.type === 'response.output_text.delta')
		text += ev.delta;
	if (ev.type === 'response.completed')
		completed = ev.response;
}
out.stream = { events, text, seq_ok: seqs.every((s, i) => s === i),
    status: completed?.status, usage: completed?.usage,
    output_text: completed?.output?.[0]?.content?.[0]?.text };

// The tool round trip, not streamed.
const first = await client.responses.create({
	model, tools, input: 'Weather in Paris? MOCK{tool=1}',
});
const call = first.output.find((i) => i.type === 'function_call');
out.call = call ? { name: call.name, call_id: call.call_id,
    args: JSON.parse(call.arguments), status: first.status } : null;
const second = await client.responses.create({
	model, tools, input: [
		{ role: 'user', content: 'Weather in Paris? MOCK{echo=1}' },
		call,
		{ type: 'function_call_output', call_id: call.call_id,
		    output: '{"temp_c":11}' },
	],
});
// The mock's echo=1 answers with the chat request it got (an OpenAI upstream).
try {
	out.answer = JSON.parse(second.output_text).messages;
} catch {
	out.answer = { text: second.output_text, status: second.status };
}

// The tool call streamed: events and the arguments assembled.
const ts = await client.responses.create({
	model, tools, stream: true, input: 'Weather? MOCK{tool=1}',
});
const tevents = [];
let args = '', argsDone = null, final = null;
for await (const ev of ts) {
	if (tevents[tevents.length - 1] !== ev.type)
		tevents.push(ev.type);
	if (ev.type === 'response.function_call_arguments.delta')
		args += ev.delta;
	if (ev.type === 'response.function_call_arguments.done')
		argsDone = ev.arguments;
	if (ev.type === 'response.completed')
		final = ev.response;
}
out.tool_stream = { events: tevents, args, args_done: argsDone,
    item: final?.output?.[0] };

// The SDK's own stream helper, which checks the event grammar.
const runner = client.responses.stream({ model, input: 'Hi MOCK{chunks=2}' });
const fin = await runner.finalResponse();
out.helper = { output_text: fin.output_text, status: fin.status };

// Reasoning (DeepSeek's reasoning_content) as a reasoning item, through
// the stream helper: its events and the final output's items.
const rs = client.responses.stream({ model, input: 'Think MOCK{reasoning=1}' });
const revents = [];
rs.on('event', (ev) => {
	if (revents[revents.length - 1] !== ev.type)
		revents.push(ev.type);
});
const rfin = await rs.finalResponse();
out.reasoning = { events: revents, types: rfin.output.map((i) => i.type),
    summary: rfin.output[0]?.summary?.[0]?.text, output_text: rfin.output_text };

for (const [name, body] of [
	['previous', { model, input: 'x', previous_response_id: 'resp_abc' }],
	['store', { model, input: 'x', store: true }],
	['unknown', { model: 'no-such-model-xyz', input: 'x' }],
]) {
	try {
		await client.responses.create(body);
		out[name] = { status: 0 };
	} catch (e) {
		out[name] = { status: e.status, code: e.code, param: e.param,
		    message: e.error?.message ?? e.message };
	}
}
console.log(JSON.stringify(out));
