using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hive.Client;

namespace Hive.Cli;

/// <summary><c>hive secrets</c>: the host-side values egress rules inject as <c>${secret:NAME}</c> (write-only).</summary>
internal static class SecretsCommand
{
    public static Command Build(Func<ParseResult, HiveClient> client, Option<bool> json)
    {
        var command = new Command("secrets", "Manage secrets for egress inject rules (${secret:NAME}); values never come back out");

        var setName = new Argument<string>("name") { Description = "Secret name (letters, digits, '.', '_', '-')" };
        var hosts = new Option<string[]>("--host") { Description = "A host (or glob like *.openai.com) the secret may be sent to; repeatable, at least one", AllowMultipleArgumentsPerToken = false, Required = true };
        var allowHttp = new Option<bool>("--allow-http") { Description = "Also inject it into plain-HTTP requests (default: TLS only)" };
        var keepValue = new Option<bool>("--keep-value") { Description = "Change only the hosts of an existing secret (nothing is read from stdin)" };
        var set = new Command("set", "Store a secret bound to the hosts it may be sent to; the value is read from stdin (one line, or everything piped)") { setName, hosts, allowHttp, keepValue };
        set.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            var value = parse.GetValue(keepValue) ? null : (await Console.In.ReadToEndAsync(ct)).TrimEnd('\r', '\n');
            var stored = await api.SetSecretAsync(parse.GetValue(setName)!, value, parse.GetValue(hosts)!, parse.GetValue(allowHttp), ct);
            Console.WriteLine($"{stored.Name}\tstored {stored.UpdatedAt}\t{Describe(stored)}");
            return 0;
        });

        var list = new Command("ls", "List secret names (never values)") { json };
        list.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            var secrets = await api.ListSecretsAsync(ct);
            if (parse.GetValue(json))
            {
                var result = new JsonObject { ["secrets"] = JsonSerializer.SerializeToNode(secrets, CliJson.Options), ["total"] = secrets.Count };
                Console.WriteLine(result.ToJsonString(CliJson.Options));
                return 0;
            }

            foreach (var secret in secrets)
            {
                Console.WriteLine($"{secret.Name}\t{secret.UpdatedAt}\t{Describe(secret)}");
            }

            return 0;
        });

        var removeName = new Argument<string>("name") { Description = "Secret name" };
        var remove = new Command("rm", "Delete a secret (requests whose rules use it answer 502 from then on)") { removeName };
        remove.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            await api.DeleteSecretAsync(parse.GetValue(removeName)!, ct);
            Console.WriteLine($"{parse.GetValue(removeName)}\tdeleted");
            return 0;
        });

        command.Subcommands.Add(set);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }

    /// <summary>Where a secret may go: "hosts a, b (TLS only)", or why it is never injected.</summary>
    private static string Describe(SecretInfo secret) =>
        secret.Error is { } error
            ? "NOT INJECTED: " + error
            : "hosts " + string.Join(", ", secret.Hosts) + (secret.AllowHttp ? " (HTTP and TLS)" : " (TLS only)");
}
