-module(busseeds).
-export([main/0]).
main() ->
    {ok, Pg} = pg:start(ebus_ps_pg),
    Me = self(),
    Sub = spawn(fun() -> receive stop -> ok end end),
    W = fun(Name, T) -> ok = file:write_file(Name, term_to_binary(T)) end,
    W("discover.bin", {discover, Pg}),
    W("discover_v.bin", {discover, Pg, 1}),
    W("sync_cast.bin", {'$gen_cast', {sync, Pg, [{ebus_ps, [Me]}]}}),
    W("sync_empty_cast.bin", {'$gen_cast', {sync, Pg, []}}),
    W("sync_many_cast.bin", {'$gen_cast', {sync, Pg, [{ebus_ps, [Me, Sub]}, {{other, <<"g">>}, [Sub]}]}}),
    W("join_pid.bin", {join, Pg, ebus_ps, Me}),
    W("join_list.bin", {join, Pg, ebus_ps, [Me, Sub]}),
    W("leave_pid.bin", {leave, Pg, Me, [ebus_ps]}),
    W("leave_list.bin", {leave, Pg, [Me, Sub], [ebus_ps, ebus_ps]}),
    W("forward_none.bin", {forward_to_local, none, 1, <<"board:cave-1">>, {hello, <<"from erlang">>, 42}}),
    W("forward_from.bin", {forward_to_local, Me, 5, <<"board:cave-1">>, #{ebus_t => broadcast, event => <<"e">>}}),
    W("forward_unicode.bin", {forward_to_local, none, 1, <<"board:é-ŝ"/utf8>>, [1,2,3]}),
    W("subs_query.bin", {tavern_bus_subscribers, <<"board:cave-1">>}),
    io:format("pg ~p me ~p~n", [Pg, Me]),
    halt().
