/* Integration groups: GROUP(name) runs itests_<name>(). */
GROUP(client)
GROUP(informer)
GROUP(manager)
GROUP(status)
