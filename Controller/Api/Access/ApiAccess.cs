using System.Security.Cryptography;
using System.Text;
using Hive.Controller.Hosting;
using Microsoft.AspNetCore.Authorization;

namespace Hive.Controller.Api.Access;

/// <summary>
/// Who may call the API, decided once for every endpoint: an authentication scheme for the
/// bearer key (<see cref="ApiKeyAuthenticationHandler"/>) and a <em>fallback</em> authorization
/// policy — an authenticated caller, not acting for another origin — that applies to every
/// request no endpoint opted out of with <c>AllowAnonymous()</c>: all of <c>/api</c> however its
/// path is spelled (routing is case-insensitive; an unmatched spelling has no endpoint and falls
/// back too), unknown paths (401 before 404), SSE, WebSocket handshakes, MCP and ingress, and
/// anything mapped later. Only <c>/healthz</c> and the dashboard's static shell are anonymous.
/// </summary>
/// <remarks>
/// Request order: JSON errors → <see cref="HostCheck"/> (DNS rebinding) → routing →
/// authentication → authorization (401/403) → <see cref="JsonBodies"/> (415) → WebSockets → endpoint.
/// </remarks>
internal static class ApiAccess
{
    public static IServiceCollection AddApiAccess(this IServiceCollection services, ControllerOptions options)
    {
        // AddAuthenticationCore, not AddAuthentication: the latter also sets up Data Protection, which
        // nothing here uses and which would write a key ring under the home directory.
        services.AddAuthenticationCore(o =>
        {
            o.AddScheme<ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
            o.DefaultScheme = ApiKeyAuthenticationHandler.SchemeName;
        });
        services.AddWebEncoders();
        services.AddTransient<ApiKeyAuthenticationHandler>();
        services.AddOptions<ApiKeyAuthenticationOptions>(ApiKeyAuthenticationHandler.SchemeName).Configure(o =>
            o.KeyHash = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey)));
        services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(ApiKeyAuthenticationHandler.SchemeName)
                .RequireAuthenticatedUser()
                .AddRequirements(SameOriginRequirement.Instance)
                .Build());
        services.AddSingleton<IAuthorizationHandler>(SameOriginRequirement.Instance);
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AccessResultHandler>();
        return services;
    }

    public static WebApplication UseApiAccess(this WebApplication app, ControllerOptions options)
    {
        app.UseHostCheck(HostCheck.Patterns(options.ApiKey, options.EffectiveHost, options.AllowedHosts));
        app.UseRouting();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseJsonBodies();
        return app;
    }
}
