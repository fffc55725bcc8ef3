using System.CommandLine;
using System.Text.Json.Nodes;

namespace Hive.Cli;

/// <summary><c>hive secrets</c>: the host-side values egress rules inject as <c>${secret:NAME}</c> (write-only).</summary>
internal static class SecretsCommand
{
    public static Command Build(Func<ParseResult, ApiClient> client, Option<bool> json)
    {
        var command = new Command("secrets", "Manage secrets for egress inject rules (${secret:NAME}); values never come back out");

        var setName = new Argument<string>("name") { Description = "Secret name (letters, digits, '.', '_', '-')" };
        var set = new Command("set", "Store a secret; the value is read from stdin (one line, or everything piped)") { setName };
        set.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            var value = (await Console.In.ReadToEndAsync(ct)).TrimEnd('\r', '\n');
            var stored = await api.PutAsync($"api/v1/secrets/{Uri.EscapeDataString(parse.GetValue(setName)!)}", new JsonObject { ["value"] = value }, ct);
            Console.WriteLine($"{stored["name"]}\tstored {stored["updated_at"]}");
            return 0;
        });

        var list = new Command("ls", "List secret names (never values)") { json };
        list.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            var result = await api.GetAsync("api/v1/secrets", ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(result.ToJsonString(CliJson.Options));
                return 0;
            }

            foreach (var secret in result["secrets"]?.AsArray() ?? [])
            {
                Console.WriteLine($"{secret!["name"]}\t{secret["updated_at"]}");
            }

            return 0;
        });

        var removeName = new Argument<string>("name") { Description = "Secret name" };
        var remove = new Command("rm", "Delete a secret (requests whose rules use it answer 502 from then on)") { removeName };
        remove.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            await api.DeleteAsync($"api/v1/secrets/{Uri.EscapeDataString(parse.GetValue(removeName)!)}", ct);
            Console.WriteLine($"{parse.GetValue(removeName)}\tdeleted");
            return 0;
        });

        command.Subcommands.Add(set);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }
}
