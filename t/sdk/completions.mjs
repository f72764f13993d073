// completions.mjs: the legacy text completion through the gateway with the
// official openai npm client: one call, one streamed, one refused.
// usage: node completions.mjs BASE_URL API_KEY MODEL REFUSED-MODEL
// Prints one JSON object with what each call got.
import OpenAI from 'openai';

const [baseURL, apiKey, model, refused] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const out = {};

const done = await client.completions.create({
	model, prompt: 'def add(a, b): MOCK{say=1}', suffix: '    return c',
	max_tokens: 16,
});
out.text = done.choices[0].text;
out.object = done.object;
out.model = done.model;
out.usage = done.usage;

const stream = await client.completions.create({
	model, prompt: 'count MOCK{chunks=4}', stream: true,
	stream_options: { include_usage: true },
});
let text = '', usage = null, finish = null;
for await (const chunk of stream) {
	if (chunk.choices.length > 0) {
		text += chunk.choices[0].text;
		finish = chunk.choices[0].finish_reason ?? finish;
	}
	if (chunk.usage)
		usage = chunk.usage;
}
out.stream_text = text;
out.stream_usage = usage;
out.stream_finish = finish;

try {
	await client.completions.create({ model: refused, prompt: 'x' });
	out.error_status = 0;
} catch (e) {
	out.error_status = e.status;
	out.error_code = e.code;
	out.error_message = e.error?.message;
}
console.log(JSON.stringify(out));
