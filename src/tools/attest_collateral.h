/*
 * attest_collateral.h — the `tmqtt-attest collateral ...` subcommands
 * (attest_collateral.c), called from tmqtt-attest's main.
 */
#ifndef TM_TOOLS_ATTEST_COLLATERAL_H
#define TM_TOOLS_ATTEST_COLLATERAL_H
/* argv[0] is "collateral". Returns the exit status: 0 ok, 1 failure, 2 usage. */
int tm_attest_collateral_main(int argc, char **argv);
#endif
