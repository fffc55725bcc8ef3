using Hive.Controller.Sandboxes;
using Hive.Controller.Sandboxes.Config;
using Hive.Controller.Sandboxes.Store;

namespace Hive.Controller.Api;

/// <summary><c>/api/v1/hiveboxes</c>: create, get-or-create, list, inspect, destroy.</summary>
internal static class SandboxEndpoints
{
    public static void MapSandboxEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/hiveboxes");

        group.MapPost("/", async (HttpContext http, SandboxManager manager, TimeProvider time) =>
        {
            var request = await ApiJson.ReadBodyAsync(http.Request, CreateSandboxRequest.Empty);
            var (record, _) = await manager.CreateAsync(request, pathName: null, getOrCreate: false);
            return Results.Json(SandboxViews.Detail(record, time.GetUtcNow()), ApiJson.Options, statusCode: StatusCodes.Status201Created);
        });

        group.MapGet("/", (SandboxStore store, TimeProvider time) =>
        {
            var now = time.GetUtcNow();
            var sandboxes = store.List().Select(r => SandboxViews.Summary(r, now)).ToList();
            return Results.Json(new SandboxList(sandboxes, sandboxes.Count), ApiJson.Options);
        });

        group.MapGet("/{id}", async (string id, SandboxStore store, SandboxManager manager, TimeProvider time, CancellationToken cancellationToken) =>
        {
            var record = store.Get(RouteNames.Require(id));
            LiveUsage? usage = null;
            if (record.Status == LifecycleStatus.Running && await manager.CheckAsync(record.Name, cancellationToken) is { } live)
            {
                usage = LiveUsage.From(live);
                record = store.Get(record.Name); // the probe may have changed the status
            }

            return Results.Json(SandboxViews.Detail(record, time.GetUtcNow(), usage), ApiJson.Options);
        });

        // Idempotent get-or-create: 201 when created, 200 when a sandbox with this name and a compatible configuration exists.
        group.MapPut("/{id}", async (string id, HttpContext http, SandboxManager manager, TimeProvider time) =>
        {
            var name = RouteNames.Require(id);
            var request = await ApiJson.ReadBodyAsync(http.Request, CreateSandboxRequest.Empty);
            var (record, created) = await manager.CreateAsync(request, name, getOrCreate: true);
            return Results.Json(
                SandboxViews.Detail(record, time.GetUtcNow()),
                ApiJson.Options,
                statusCode: created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
        });

        // Live policy change: new ACL rules for existing workspaces, applied without a remount.
        group.MapPatch("/{id}", async (string id, HttpContext http, SandboxManager manager, TimeProvider time) =>
        {
            var name = RouteNames.Require(id);
            var request = await ApiJson.ReadBodyAsync(http.Request, UpdateSandboxRequest.Empty);
            if (request.Fs is null && request.Egress is null)
            {
                throw ApiException.BadRequest("give fs (new ACL rules for existing workspaces) and/or egress (a new egress policy, null for every host)");
            }

            SandboxRecord? record = null;
            if (request.Egress is { } egress)
            {
                record = await manager.UpdateEgressAsync(name, egress, Actor(http));
            }

            if (request.Fs is not null)
            {
                record = await manager.UpdateAclsAsync(name, request, Actor(http));
            }

            return Results.Json(SandboxViews.Detail(record!, time.GetUtcNow()), ApiJson.Options);
        });

        group.MapDelete("/{id}", async (string id, SandboxManager manager) =>
        {
            var name = RouteNames.Require(id);
            await manager.DestroyAsync(name);
            return Results.Json(new DestroyedView(name, "destroyed"), ApiJson.Options);
        });
    }

    /// <summary>Who made a policy change, for its event: how the caller authenticated (api-key, loopback) and from where.</summary>
    private static string Actor(HttpContext http) =>
        (http.User.Identity?.AuthenticationType ?? "unknown") + "@" + http.Connection.RemoteIpAddress;
}
