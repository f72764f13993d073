// embeddings.mjs: embeddings through the gateway with the official openai npm
// client, which asks for base64 when the caller names no encoding_format and
// decodes it as little-endian float32 itself (an array of floats would decode
// to garbage).
// usage: node embeddings.mjs BASE_URL API_KEY MODEL
import OpenAI from 'openai';

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });

const batch = await client.embeddings.create({
	model, input: ['hello world', 'second input'],
});
const single = await client.embeddings.create({
	model, input: 'hi there', encoding_format: 'float',
});
console.log(JSON.stringify({
	model: batch.model,
	usage: batch.usage,
	vectors: batch.data.map((d) => Array.from(d.embedding)),
	floats: single.data[0].embedding,
}));
