using System.Text.Json;
using System.Text.RegularExpressions;
using Hive.Controller.Hosting;

namespace Hive.Controller.Api;

/// <summary>
/// The host-side secret store for egress <c>inject</c> values (<c>${secret:NAME}</c>): values go in
/// and never come out — not through this API, not into a sandbox, not into an event. Files live in
/// <c>&lt;data&gt;/secrets/</c> (0700 directory, 0600 files); SbxProxy reads them when a request needs one.
/// </summary>
internal static partial class SecretEndpoints
{
    private const int MaxValueBytes = 64 * 1024;

    public static void MapSecretEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/secrets");
        group.MapGet("/", (ControllerOptions options) =>
        {
            var dir = options.SecretsDir;
            var secrets = Directory.Exists(dir)
                ? Directory.EnumerateFiles(dir)
                    .Select(f => new FileInfo(f))
                    .Where(f => NamePattern().IsMatch(f.Name))
                    .OrderBy(f => f.Name, StringComparer.Ordinal)
                    .Select(f => new SecretView(f.Name, f.LastWriteTimeUtc.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture)))
                    .ToList()
                : [];
            return Results.Json(new SecretList(secrets, secrets.Count), ApiJson.Options);
        });

        group.MapPut("/{name}", async (string name, HttpContext http, ControllerOptions options) =>
        {
            RequireName(name);
            var body = await ApiJson.ReadBodyAsync(http.Request, new SecretRequest());
            if (body.Value is not { Length: > 0 } value || System.Text.Encoding.UTF8.GetByteCount(value) > MaxValueBytes)
            {
                throw ApiException.BadRequest($"value must be a non-empty string of at most {MaxValueBytes} bytes");
            }

            if (value.Length < 4)
            {
                throw ApiException.BadRequest("value must be at least 4 characters (shorter values cannot be redacted reliably from events)");
            }

            var dir = options.SecretsDir;
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var temp = Path.Combine(dir, "." + name + ".tmp");
            await using (var file = new FileStream(temp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(value));
                file.Flush(flushToDisk: true);
            }

            var existed = File.Exists(Path.Combine(dir, name));
            File.Move(temp, Path.Combine(dir, name), overwrite: true);
            return Results.Json(new SecretView(name, DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture)), ApiJson.Options, statusCode: existed ? StatusCodes.Status200OK : StatusCodes.Status201Created);
        });

        group.MapDelete("/{name}", (string name, ControllerOptions options) =>
        {
            RequireName(name);
            var path = Path.Combine(options.SecretsDir, name);
            if (!File.Exists(path))
            {
                throw ApiException.NotFound($"secret '{name}' not found");
            }

            File.Delete(path);
            return Results.Json(new { name, status = "deleted" }, ApiJson.Options);
        });
    }

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
}

internal sealed record SecretView(string Name, string UpdatedAt);

internal sealed record SecretList(IReadOnlyList<SecretView> Secrets, int Total);
