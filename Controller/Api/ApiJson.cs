using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hive.Controller.Api;

/// <summary>The API's JSON conventions: snake_case, unknown fields rejected, nulls omitted.</summary>
internal static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
        AllowTrailingCommas = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = 32,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // readable errors; responses are application/json, never HTML
    };

    /// <summary>Reads a JSON body; an empty body is <paramref name="empty"/>. Errors are 400s that say where.</summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, T empty)
        where T : class
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        if (buffer.Length == 0 || IsWhitespace(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)))
        {
            return empty;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Options)
                ?? throw ApiException.BadRequest("request body must be a JSON object, not null");
        }
        catch (JsonException ex)
        {
            throw ApiException.BadRequest(Describe(ex));
        }
    }

    private static string Describe(JsonException ex)
    {
        var where = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? string.Empty : $" at '{ex.Path.TrimStart('$', '.')}'";
        var message = ex.Message;
        if (message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            return $"unknown field{where}";
        }

        if (message.Contains("could not be converted", StringComparison.Ordinal))
        {
            return $"invalid value{where}: wrong type";
        }

        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return $"invalid JSON{where}: {(cut > 0 ? message[..cut] : message)}";
    }

    private static bool IsWhitespace(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                return false;
            }
        }

        return true;
    }
}
