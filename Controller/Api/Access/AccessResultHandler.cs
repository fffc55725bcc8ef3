using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace Hive.Controller.Api.Access;

/// <summary>
/// What a refused request gets: 401 (with <c>WWW-Authenticate</c>) when the caller is not
/// authenticated — also on unknown paths, so probing without the key learns nothing — and 403
/// with the reason (e.g. a cross-origin request) when it is.
/// </summary>
internal sealed class AccessResultHandler : IAuthorizationMiddlewareResultHandler
{
    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded)
        {
            await next(context);
        }
        else if (authorizeResult.Challenged)
        {
            await context.ChallengeAsync(ApiKeyAuthenticationHandler.SchemeName);
        }
        else
        {
            var reason = authorizeResult.AuthorizationFailure?.FailureReasons.Select(r => r.Message).FirstOrDefault(m => m.Length > 0) ?? "forbidden";
            await ErrorHandling.WriteErrorAsync(context, StatusCodes.Status403Forbidden, reason);
        }
    }
}
