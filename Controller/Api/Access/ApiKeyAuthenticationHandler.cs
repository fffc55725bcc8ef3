using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Hive.Controller.Api.Access;

/// <summary>Settings of <see cref="ApiKeyAuthenticationHandler"/>.</summary>
internal sealed class ApiKeyAuthenticationOptions : AuthenticationSchemeOptions
{
    /// <summary>SHA-256 of the API key; null = no key configured (a loopback-only Controller).</summary>
    public byte[]? KeyHash { get; set; }
}

/// <summary>
/// Who is calling: with a key configured, a caller presenting <c>Authorization: Bearer &lt;key&gt;</c>
/// (RFC 6750 §2.1: the scheme is case-insensitive, one or more spaces, then the token; nothing
/// else — no query parameter, no cookie, no second header); without one, any caller on loopback
/// (the Controller then listens nowhere else). Whether the caller may do something is decided by
/// the authorization policy (<see cref="ApiAccess"/>), never here, so no endpoint can forget it.
/// </summary>
/// <remarks>
/// Both sides are hashed first so the comparison takes the same time whatever the lengths
/// (<see cref="CryptographicOperations.FixedTimeEquals"/> wants equal lengths).
/// </remarks>
internal sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<ApiKeyAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<ApiKeyAuthenticationOptions>(options, logger, encoder)
{
    public const string SchemeName = "api-key";

    /// <summary>The identity's authentication type without a key: trusted for being on loopback.</summary>
    public const string Loopback = "loopback";

    private const string Bearer = "Bearer ";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Options.KeyHash is not { } expected)
        {
            return Task.FromResult(Context.Connection.RemoteIpAddress is { } remote && System.Net.IPAddress.IsLoopback(remote)
                ? Success(Loopback)
                : AuthenticateResult.Fail("this Controller has no API key and serves loopback callers only"));
        }

        var values = Request.Headers.Authorization;
        if (values.Count == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (values.Count > 1 || values[0] is not { } header || !header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.Fail("not a single Bearer credential"));
        }

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header.AsSpan(Bearer.Length).Trim(' ').ToString()));
        return Task.FromResult(CryptographicOperations.FixedTimeEquals(presented, expected)
            ? Success(SchemeName)
            : AuthenticateResult.Fail("wrong API key"));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        await ErrorHandling.WriteErrorAsync(Context, StatusCodes.Status401Unauthorized, Options.KeyHash is null
            ? "unauthorized: this Controller has no API key and serves loopback callers only"
            : "unauthorized: missing or invalid API key (send 'Authorization: Bearer <key>')");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ErrorHandling.WriteErrorAsync(Context, StatusCodes.Status403Forbidden, "forbidden");

    private AuthenticateResult Success(string how) => AuthenticateResult.Success(
        new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, how)], how)), Scheme.Name));
}
