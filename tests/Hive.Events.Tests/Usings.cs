global using Hive.Events.Log;
global using Hive.Events.Spool;
global using Hive.Protos.V1;
global using NUnit.Framework;
