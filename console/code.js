// The playground's request as code: curl, Python (the official `openai` SDK), JavaScript (fetch), and
// the seed service's URL style. The base URL is this page's own origin; the key is always a
// placeholder (an environment variable, or YOUR_KEY in the seed URL), never the key pasted here.

export const KEY_ENV = "SWITCHYARD_KEY";
export const KEY_PLACEHOLDER = "YOUR_KEY";

export function baseURL() {
  return `${location.origin}/v1`;
}

/** The seed's URL: /llm_api/{openid}/{userid}/{AI_system}/v1/chat/completions (openid = the key). */
export function seedURL(model, userid) {
  const seg = (s) => encodeURIComponent(s);
  return `${location.origin}/llm_api/${KEY_PLACEHOLDER}/${seg(userid || "alice")}/${seg(model || "")}/v1/chat/completions`;
}

export function curl(body) {
  const json = JSON.stringify(body, null, 2);
  return [
    `curl ${body.stream ? "-N " : ""}${baseURL()}/chat/completions \\`,
    `  -H "Authorization: Bearer $${KEY_ENV}" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d @- <<'EOF'`,
    json,
    "EOF",
  ].join("\n");
}

/** A JSON value as a Python literal (True/False/None), indented like json.dumps(indent=4). */
export function pyLiteral(value, indent = 0) {
  const pad = (n) => " ".repeat(n);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => pad(indent + 4) + pyLiteral(v, indent + 4)).join(",\n")},\n${pad(indent)}]`;
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  return `{\n${entries
    .map(([k, v]) => `${pad(indent + 4)}${JSON.stringify(k)}: ${pyLiteral(v, indent + 4)}`)
    .join(",\n")},\n${pad(indent)}}`;
}

function pyArgs(body, skip = []) {
  return Object.entries(body)
    .filter(([k]) => !skip.includes(k))
    .map(([k, v]) => `    ${k}=${pyLiteral(v, 4)},`)
    .join("\n");
}

function pyOutput(stream) {
  return stream
    ? [
        "for chunk in response:",
        "    if chunk.choices and chunk.choices[0].delta.content:",
        '        print(chunk.choices[0].delta.content, end="", flush=True)',
        "    if chunk.usage:",
        '        print("\\n", chunk.usage)',
      ]
    : ["print(response.choices[0].message.content)", "print(response.usage)"];
}

export function python(body) {
  return [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${JSON.stringify(baseURL())}, api_key=os.environ[${JSON.stringify(KEY_ENV)}])`,
    "",
    "response = client.chat.completions.create(",
    pyArgs(body),
    ")",
    ...pyOutput(body.stream),
  ].join("\n");
}

export function javascript(body) {
  const json = JSON.stringify(body, null, 2)
    .split("\n")
    .map((line, i) => (i ? `  ${line}` : line))
    .join("\n");
  const head = [
    `const response = await fetch(${JSON.stringify(`${baseURL()}/chat/completions`)}, {`,
    `  method: "POST",`,
    `  headers: {`,
    `    "Authorization": \`Bearer \${process.env.${KEY_ENV}}\`,`,
    `    "Content-Type": "application/json",`,
    `  },`,
    `  body: JSON.stringify(${json}),`,
    `});`,
    `if (!response.ok) throw new Error((await response.json()).error.message);`,
  ];
  const tail = body.stream
    ? [
        "// Server-sent events: one `data: {chunk}` per token, then `data: [DONE]`.",
        "const reader = response.body.getReader();",
        "const decoder = new TextDecoder();",
        'let buffer = "";',
        "for (;;) {",
        "  const { value, done } = await reader.read();",
        "  if (done) break;",
        "  buffer += decoder.decode(value, { stream: true });",
        '  const events = buffer.split("\\n\\n");',
        "  buffer = events.pop();",
        "  for (const event of events) {",
        '    if (!event.startsWith("data: ") || event === "data: [DONE]") continue;',
        "    const chunk = JSON.parse(event.slice(6));",
        '    process.stdout.write(chunk.choices[0]?.delta?.content ?? "");',
        "  }",
        "}",
      ]
    : ["const data = await response.json();", "console.log(data.choices[0].message.content, data.usage);"];
  return [...head, ...tail].join("\n");
}

/** The seed service's style: everything in the path; `model` in the body is not needed. */
export function seed(body) {
  const { model, ...rest } = body;
  const userid = body.user || "alice";
  const { user, ...withoutUser } = rest;
  const json = JSON.stringify(withoutUser, null, 2);
  const url = seedURL(model, userid);
  const root = url.replace(/\/chat\/completions$/, "");
  return [
    `# The seed's URL style: the key (openid), the end user (userid) and the model (AI_system) in the path.`,
    `# Replace ${KEY_PLACEHOLDER} with your key.`,
    `curl ${body.stream ? "-N " : ""}${url} \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d @- <<'EOF'`,
    json,
    "EOF",
    "",
    "# The same with the openai SDK (it sends a placeholder key; the one in the path counts):",
    "# from openai import OpenAI",
    `# client = OpenAI(base_url=${JSON.stringify(root)}, api_key="unused")`,
    `# client.chat.completions.create(model="ignored", messages=[{"role": "user", "content": "Hello"}])`,
  ].join("\n");
}

export const SAMPLES = [
  { id: "curl", label: "curl", render: curl },
  { id: "python", label: "Python (openai)", render: python },
  { id: "javascript", label: "JavaScript (fetch)", render: javascript },
  { id: "seed", label: "Seed URL style", render: seed },
];
