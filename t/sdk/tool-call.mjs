// tool-call.mjs: a streamed tool call through the gateway with the official
// openai npm client, assembled the way applications do it.
// usage: node tool-call.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const tools = [{
	type: 'function',
	function: {
		name: 'get_weather',
		description: 'Current weather in a city',
		parameters: { type: 'object', properties: { city: { type: 'string' } },
		    required: ['city'] },
	},
}];

const stream = await client.chat.completions.create({
	model,
	stream: true,
	stream_options: { include_usage: true },
	tools,
	messages: [{ role: 'user', content: 'Weather in Paris? MOCK{tool=2}' }],
});
const calls = [];
let finish = null, usage = null, text = '';
for await (const chunk of stream) {
	if (chunk.usage)
		usage = chunk.usage;
	for (const choice of chunk.choices) {
		if (choice.finish_reason)
			finish = choice.finish_reason;
		text += choice.delta.content ?? '';
		for (const tc of choice.delta.tool_calls ?? []) {
			calls[tc.index] ??= { id: '', name: '', arguments: '' };
			if (tc.id)
				calls[tc.index].id = tc.id;
			if (tc.function?.name)
				calls[tc.index].name = tc.function.name;
			calls[tc.index].arguments += tc.function?.arguments ?? '';
		}
	}
}
// The same through the SDK's own stream helper, which validates the shape.
const runner = client.chat.completions.stream({
	model, tools,
	messages: [{ role: 'user', content: 'Weather in Paris? MOCK{tool=1}' }],
});
const final = await runner.finalChatCompletion();
console.log(JSON.stringify({
	finish, usage, text,
	calls: calls.map((c) => ({ ...c, args: JSON.parse(c.arguments) })),
	helper: final.choices[0].message.tool_calls.map((c) => ({
		id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) })),
	helper_finish: final.choices[0].finish_reason,
}));
