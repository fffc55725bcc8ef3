using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Sandboxes;
using Hive.Controller.Sandboxes.Config;
using Hive.Protos.V1;

namespace Hive.Controller.Events;

/// <summary>
/// <c>GET</c> / <c>PUT /api/v1/hiveboxes/:id/events/budget</c>: a live sandbox's event budget — how
/// much of its byte budget its history uses, whether it is exhausted (operations refused), the rate
/// budget and what it held back — and the operator's way to raise (or lower) the byte budget.
/// </summary>
internal static class BudgetEndpoints
{
    /// <summary>Largest budget accepted (1 PB): anything larger is a typo, 0 already means unlimited.</summary>
    private const long MaxBudget = 1_000_000_000_000_000;

    public static void MapBudgetEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/hiveboxes/{id}/events/budget", async (string id, SandboxManager manager) =>
        {
            var name = RouteNames.Require(id);
            var status = await manager.CallAsync(name, c => c.EventBudgetAsync(name, new EventBudgetRequest(), CancellationToken.None));
            return Results.Json(View(status), ApiJson.Options);
        });

        app.MapPut("/api/v1/hiveboxes/{id}/events/budget", async (string id, HttpContext http, SandboxManager manager) =>
        {
            var name = RouteNames.Require(id);
            var body = await ApiJson.ReadBodyAsync(http.Request, new BudgetBody());
            var bytes = Parse(body.Bytes);
            var actor = (http.Request.Headers.Authorization.Count > 0 ? "api-key" : "loopback") + "@" + http.Connection.RemoteIpAddress;
            var status = await manager.CallAsync(name, c => c.EventBudgetAsync(name, new EventBudgetRequest { Set = true, Bytes = (ulong)bytes, Actor = actor }, CancellationToken.None));
            return Results.Json(View(status), ApiJson.Options);
        });
    }

    /// <summary><c>bytes</c>: a number of bytes or a size like <c>"2g"</c>; 0 = unlimited.</summary>
    private static long Parse(JsonElement? value)
    {
        long bytes;
        switch (value)
        {
            case { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out bytes):
                break;
            case { ValueKind: JsonValueKind.String } s when s.GetString() is "0":
                bytes = 0;
                break;
            case { ValueKind: JsonValueKind.String } s when MemorySize.TryParse(s.GetString()!, out bytes):
                break;
            case null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined }:
                throw ApiException.BadRequest("'bytes' is required: the new event budget in bytes (or \"512m\", \"2g\"); 0 = unlimited");
            default:
                throw ApiException.BadRequest("'bytes' must be a whole number of bytes or a size like \"2g\"");
        }

        if (bytes is < 0 or > MaxBudget)
        {
            throw ApiException.BadRequest($"'bytes' must be between 0 (unlimited) and {MaxBudget}");
        }

        return bytes;
    }

    private static BudgetView View(EventBudgetStatus s) => new(
        (long)s.BudgetBytes, (long)s.UsedBytes, s.Exhausted, (long)s.Refused, s.Rate, (long)s.Burst, (long)s.Throttled, (long)s.WaitedMs, s.AggregateMs);

    internal sealed record BudgetBody
    {
        public JsonElement? Bytes { get; init; }
    }

    internal sealed record BudgetView(long BudgetBytes, long UsedBytes, bool Exhausted, long Refused, double Rate, long Burst, long Throttled, long WaitedMs, uint AggregateMs);
}
