// openai-client.mjs: drive the gateway with the official openai npm client.
// usage: node openai-client.mjs BASE_URL API_KEY MODEL
// Prints one JSON object with what the non-streaming and streaming calls got.
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const out = {};

const done = await client.chat.completions.create({
	model,
	messages: [{ role: 'user', content: 'Say hello' }],
});
out.content = done.choices[0].message.content;
out.model = done.model;
out.usage = done.usage;

const stream = await client.chat.completions.create({
	model,
	stream: true,
	stream_options: { include_usage: true },
	messages: [{ role: 'user', content: 'Count MOCK{chunks=4}' }],
});
let text = '', chunks = 0, usage = null;
for await (const chunk of stream) {
	chunks++;
	if (chunk.choices.length > 0)
		text += chunk.choices[0].delta.content ?? '';
	if (chunk.usage)
		usage = chunk.usage;
}
out.stream_text = text;
out.stream_chunks = chunks;
out.stream_usage = usage;

try {
	await client.chat.completions.create({ model: 'no-such-model-xyz',
	    messages: [{ role: 'user', content: 'x' }] });
	out.error_status = 0;
} catch (e) {
	out.error_status = e.status;
	out.error_code = e.code;
}
console.log(JSON.stringify(out));
