using System.Text.Json;
using System.Text.RegularExpressions;
using Hive.Controller.Hosting;
using Hive.Controller.Secrets;
using Hive.Policy.Net;

namespace Hive.Controller.Api;

/// <summary>
/// The host-side secret store for egress <c>inject</c> values (<c>${secret:NAME}</c>): values go in
/// and never come out — not through this API, not into a sandbox, not into an event. Each secret
/// names the hosts it may be sent to (and whether plain HTTP is acceptable); rules that would send
/// it elsewhere are refused, and SbxProxy checks again on every request.
/// </summary>
internal static partial class SecretEndpoints
{
    private const int MaxValueBytes = 64 * 1024;

    public static void MapSecretEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/secrets");
        group.MapGet("/", (ControllerOptions options) =>
        {
            var secrets = new SecretStore(options.SecretsDir).List(NamePattern().IsMatch).Select(s => View(s.Name, s.UpdatedAt, s.Secret)).ToList();
            return Results.Json(new SecretList(secrets, secrets.Count), ApiJson.Options);
        });

        // PUT stores a value with its hosts; without "value", an existing secret keeps its value and
        // gets the new hosts (how a secret stored before hosts existed is bound, or narrowed).
        group.MapPut("/{name}", async (string name, HttpContext http, ControllerOptions options) =>
        {
            RequireName(name);
            var body = await ApiJson.ReadBodyAsync(http.Request, new SecretRequest());
            var store = new SecretStore(options.SecretsDir);
            var errors = new List<string>();
            var value = body.Value;
            if (value is null)
            {
                value = store.Read(name)?.Value;
                if (value is null)
                {
                    errors.Add("value is required for a new secret");
                }
            }
            else if (value.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(value) > MaxValueBytes)
            {
                errors.Add($"value must be a non-empty string of at most {MaxValueBytes} bytes");
            }
            else if (value.Length < 4)
            {
                errors.Add("value must be at least 4 characters (shorter values cannot be redacted reliably from events)");
            }

            var hosts = body.Hosts is { ValueKind: not JsonValueKind.Null } given
                ? StoredSecret.ParseHosts(given, errors)
                : Required(errors);
            if (errors.Count > 0)
            {
                throw ApiException.BadRequest(string.Join("; ", errors));
            }

            var allowHttp = body.AllowHttp ?? false;
            var existed = await store.WriteAsync(name, value!, hosts.Select(h => h.Pattern), allowHttp, http.RequestAborted);
            var stored = StoredSecret.Parse(StoredSecret.Serialize(value!, hosts.Select(h => h.Pattern), allowHttp));
            return Results.Json(View(name, DateTime.UtcNow, stored), ApiJson.Options, statusCode: existed ? StatusCodes.Status200OK : StatusCodes.Status201Created);
        });

        group.MapDelete("/{name}", (string name, ControllerOptions options) =>
        {
            RequireName(name);
            if (!new SecretStore(options.SecretsDir).Delete(name))
            {
                throw ApiException.NotFound($"secret '{name}' not found");
            }

            return Results.Json(new { name, status = "deleted" }, ApiJson.Options);
        });
    }

    private static List<HostPattern> Required(List<string> errors)
    {
        errors.Add("hosts is required: the hosts the secret may be sent to, e.g. [\"api.github.com\", \"*.openai.com\"]");
        return [];
    }

    private static SecretView View(string name, DateTime updatedAt, StoredSecret secret) => new(
        name,
        updatedAt.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
        secret.Hosts?.Select(h => h.Pattern).ToList() ?? [],
        secret.AllowHttp,
        secret.Bound ? null : "stored before secrets were bound to hosts: never injected until stored again with hosts");

    private static void RequireName(string name)
    {
        if (!NamePattern().IsMatch(name))
        {
            throw ApiException.BadRequest("invalid secret name: 1-64 of letters, digits, '.', '_', '-', not starting with '.'");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();
}

internal sealed record SecretRequest
{
    public string? Value { get; init; }

    /// <summary>Host names or globs (as in egress rules) the value may be sent to; required.</summary>
    public JsonElement? Hosts { get; init; }

    /// <summary>May the value travel over plain HTTP. Default false: TLS only.</summary>
    public bool? AllowHttp { get; init; }
}

/// <summary>A secret as listed: never its value. <c>Error</c> says why it cannot be injected, if it cannot.</summary>
internal sealed record SecretView(string Name, string UpdatedAt, IReadOnlyList<string> Hosts, bool AllowHttp, string? Error = null);

internal sealed record SecretList(IReadOnlyList<SecretView> Secrets, int Total);
