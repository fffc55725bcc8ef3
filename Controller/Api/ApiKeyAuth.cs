using System.Security.Cryptography;
using System.Text;

namespace Hive.Controller.Api;

/// <summary>
/// Bearer-key check for <c>/api/*</c>. Both sides are hashed first so the comparison is
/// constant-time whatever the lengths (CryptographicOperations.FixedTimeEquals needs equal lengths).
/// </summary>
internal static class ApiKeyAuth
{
    public static IApplicationBuilder UseApiKey(this IApplicationBuilder app, string? apiKey)
    {
        if (apiKey is null)
        {
            return app;
        }

        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(apiKey));
        return app.Use(async (http, next) =>
        {
            if (!http.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal) || IsAuthorized(http.Request, expected))
            {
                await next(http);
                return;
            }

            http.Response.Headers.WWWAuthenticate = "Bearer";
            await ErrorHandling.WriteErrorAsync(http, StatusCodes.Status401Unauthorized, "unauthorized: missing or invalid API key");
        });
    }

    private static bool IsAuthorized(HttpRequest request, byte[] expected)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, expected);
    }
}
