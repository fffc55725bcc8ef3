using System.Text.Json;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Hive.Agent.Mcp;

/// <summary>
/// Checks a call's arguments against the tool's input schema before it runs, so a missing or
/// mistyped argument gets an error that names it (the SDK's binder only says the call failed).
/// </summary>
internal static class ArgumentValidator
{
    public static McpRequestHandler<CallToolRequestParams, CallToolResult> Filter(McpRequestHandler<CallToolRequestParams, CallToolResult> next) =>
        async (context, cancellationToken) =>
        {
            if (context.MatchedPrimitive is McpServerTool tool && Validate(tool.ProtocolTool.InputSchema, context.Params?.Arguments) is { } problem)
            {
                return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = $"invalid arguments for '{tool.ProtocolTool.Name}': {problem}" }] };
            }

            return await next(context, cancellationToken);
        };

    private static string? Validate(JsonElement schema, IDictionary<string, JsonElement>? arguments)
    {
        arguments ??= new Dictionary<string, JsonElement>();
        var properties = schema.TryGetProperty("properties", out var p) ? p : default;
        if (schema.TryGetProperty("required", out var required))
        {
            foreach (var name in required.EnumerateArray().Select(r => r.GetString()!))
            {
                if (!arguments.TryGetValue(name, out var value) || value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
                {
                    return $"'{name}' is required";
                }
            }
        }

        foreach (var (name, value) in arguments)
        {
            if (properties.ValueKind != JsonValueKind.Object || !properties.TryGetProperty(name, out var property))
            {
                return $"unknown argument '{name}' (expected: {string.Join(", ", properties.ValueKind == JsonValueKind.Object ? properties.EnumerateObject().Select(x => x.Name) : [])})";
            }

            if (property.TryGetProperty("type", out var type) && !Allows(type, value))
            {
                return $"'{name}' must be {Describe(type)}, not {value.ValueKind.ToString().ToLowerInvariant()}";
            }
        }

        return null;
    }

    private static bool Allows(JsonElement type, JsonElement value) =>
        type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Any(t => Allows(t.GetString(), value)) : Allows(type.GetString(), value);

    private static bool Allows(string? type, JsonElement value) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "number" => value.ValueKind == JsonValueKind.Number,
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "array" => value.ValueKind == JsonValueKind.Array,
        "object" => value.ValueKind == JsonValueKind.Object,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => true,
    };

    private static string Describe(JsonElement type) =>
        type.ValueKind == JsonValueKind.Array ? string.Join(" or ", type.EnumerateArray().Select(t => t.GetString()).Where(t => t != "null")) : type.GetString() ?? "?";
}
