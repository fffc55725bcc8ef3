using Hive.Controller.Sandboxes.Config;

namespace Hive.Controller.Api;

/// <summary>Sandbox names from URLs are untrusted: validated before they reach a path, socket or lock.</summary>
internal static class RouteNames
{
    public static string Require(string id) =>
        SandboxConfigValidator.IsValidName(id) ? id : throw ApiException.BadRequest(SandboxConfigValidator.NameError(id));
}
