using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hive.Protos.V1;

namespace Hive.SbxProxy.Llm;

/// <summary>The API shapes recognised from the traffic itself (any host: self-hosted and compatible servers count).</summary>
internal enum LlmApi
{
    OpenAiChat,
    OpenAiResponses,
    OpenAiCompletions,
    AnthropicMessages,
    GeminiGenerate,
}

/// <summary>
/// Turns one captured request/response pair into an <c>llm.call</c> event: provider, model, input
/// and output tokens, streaming or not — from the JSON bodies or the SSE stream (OpenAI chat
/// completions and responses, Anthropic messages, Gemini generateContent / streamGenerateContent).
/// </summary>
internal static partial class LlmCalls
{
    /// <summary>Request bodies above this are not kept for parsing (the call is still forwarded and audited).</summary>
    public const int MaxRequestCapture = 4 * 1024 * 1024;

    public const int MaxResponseCapture = 16 * 1024 * 1024;

    public static LlmApi? Detect(string method, string path)
    {
        if (method != "POST")
        {
            return null;
        }

        if (path.EndsWith("/chat/completions", StringComparison.Ordinal))
        {
            return LlmApi.OpenAiChat;
        }

        if (path.EndsWith("/responses", StringComparison.Ordinal))
        {
            return LlmApi.OpenAiResponses;
        }

        if (path.EndsWith("/v1/completions", StringComparison.Ordinal))
        {
            return LlmApi.OpenAiCompletions;
        }

        if (path.EndsWith("/v1/messages", StringComparison.Ordinal))
        {
            return LlmApi.AnthropicMessages;
        }

        return GeminiPath().IsMatch(path) ? LlmApi.GeminiGenerate : null;
    }

    public static string Provider(LlmApi api) => api switch
    {
        LlmApi.AnthropicMessages => "anthropic",
        LlmApi.GeminiGenerate => "gemini",
        _ => "openai",
    };

    /// <summary>Builds the event; unknown fields stay empty/zero rather than failing.</summary>
    public static LlmCallEvent Parse(LlmApi api, string path, string query, byte[] request, byte[] response, string? contentEncoding, string? contentType)
    {
        var body = new LlmCallEvent { Provider = Provider(api), Path = path };
        try
        {
            using var req = JsonDocument.Parse(request.Length == 0 ? "{}"u8.ToArray() : request);
            if (req.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (req.RootElement.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String)
                {
                    body.Model = model.GetString()!;
                }

                if (req.RootElement.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
                {
                    body.Stream = true;
                }
            }
        }
        catch (JsonException)
        {
        }

        if (api == LlmApi.GeminiGenerate)
        {
            var match = GeminiPath().Match(path);
            body.Model = match.Groups[1].Value;
            body.Stream = match.Groups[2].Value == "streamGenerateContent";
        }

        var text = Encoding.UTF8.GetString(Decode(response, contentEncoding));
        var sse = contentType?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true || query.Contains("alt=sse", StringComparison.Ordinal);
        body.Stream |= sse;
        var documents = sse ? SseData(text) : [text];
        if (api == LlmApi.GeminiGenerate && !sse && text.TrimStart().StartsWith('['))
        {
            // streamGenerateContent without alt=sse: one JSON array of responses.
            documents = SplitArray(text);
        }

        foreach (var data in documents)
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(data);
            }
            catch (JsonException)
            {
                continue;
            }

            using (doc)
            {
                if (doc.RootElement.ValueKind == JsonValueKind.Object)
                {
                    Apply(api, doc.RootElement, body);
                }
            }
        }

        return body;
    }

    private static void Apply(LlmApi api, JsonElement root, LlmCallEvent body)
    {
        switch (api)
        {
            case LlmApi.OpenAiChat or LlmApi.OpenAiCompletions:
                ModelFrom(root, body);
                if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                {
                    body.InputTokens = Int(usage, "prompt_tokens", body.InputTokens);
                    body.OutputTokens = Int(usage, "completion_tokens", body.OutputTokens);
                }

                break;
            case LlmApi.OpenAiResponses:
                var response = root.TryGetProperty("response", out var r) && r.ValueKind == JsonValueKind.Object ? r : root;
                ModelFrom(response, body);
                if (response.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
                {
                    body.InputTokens = Int(u, "input_tokens", body.InputTokens);
                    body.OutputTokens = Int(u, "output_tokens", body.OutputTokens);
                }

                break;
            case LlmApi.AnthropicMessages:
                // Non-streaming: the message itself. Streaming: message_start carries the message
                // (input tokens), message_delta the final cumulative output tokens.
                var message = root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.Object ? m : root;
                ModelFrom(message, body);
                foreach (var holder in new[] { message, root })
                {
                    if (holder.TryGetProperty("usage", out var au) && au.ValueKind == JsonValueKind.Object)
                    {
                        body.InputTokens = Int(au, "input_tokens", body.InputTokens);
                        body.OutputTokens = Int(au, "output_tokens", body.OutputTokens);
                    }
                }

                break;
            case LlmApi.GeminiGenerate:
                if (root.TryGetProperty("modelVersion", out var version) && version.ValueKind == JsonValueKind.String && body.Model.Length == 0)
                {
                    body.Model = version.GetString()!;
                }

                if (root.TryGetProperty("usageMetadata", out var gu) && gu.ValueKind == JsonValueKind.Object)
                {
                    body.InputTokens = Int(gu, "promptTokenCount", body.InputTokens);
                    body.OutputTokens = Int(gu, "candidatesTokenCount", body.OutputTokens);
                }

                break;
        }
    }

    private static void ModelFrom(JsonElement element, LlmCallEvent body)
    {
        if (element.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String && model.GetString() is { Length: > 0 } name)
        {
            body.Model = name;
        }
    }

    private static long Int(JsonElement element, string name, long fallback) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : fallback;

    /// <summary>The data payloads of an SSE stream (multi-line data joined, [DONE] skipped).</summary>
    internal static List<string> SseData(string text)
    {
        var result = new List<string>();
        var data = new StringBuilder();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0)
            {
                if (data.Length > 0)
                {
                    result.Add(data.ToString());
                    data.Clear();
                }

                continue;
            }

            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                var value = line[5..].TrimStart(' ');
                if (value == "[DONE]")
                {
                    continue;
                }

                if (data.Length > 0)
                {
                    data.Append('\n');
                }

                data.Append(value);
            }
        }

        if (data.Length > 0)
        {
            result.Add(data.ToString());
        }

        return result;
    }

    private static List<string> SplitArray(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().Select(e => e.GetRawText()).ToList() : [text];
        }
        catch (JsonException)
        {
            return [];
        }
    }

    private static byte[] Decode(byte[] body, string? encoding)
    {
        try
        {
            Stream? decoder = encoding?.Trim().ToLowerInvariant() switch
            {
                "gzip" => new GZipStream(new MemoryStream(body), CompressionMode.Decompress),
                "deflate" => new ZLibStream(new MemoryStream(body), CompressionMode.Decompress),
                "br" => new BrotliStream(new MemoryStream(body), CompressionMode.Decompress),
                _ => null,
            };
            if (decoder is null)
            {
                return body;
            }

            using (decoder)
            {
                var output = new MemoryStream();
                decoder.CopyTo(output);
                return output.ToArray();
            }
        }
        catch (InvalidDataException)
        {
            return body;
        }
    }

    [GeneratedRegex(@"/models/([^/:]+):(generateContent|streamGenerateContent)$")]
    private static partial Regex GeminiPath();
}
