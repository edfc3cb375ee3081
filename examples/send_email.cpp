// send_email: the README's first example, the seed's send_email in C++. Each call returns at
// once; the default pool sends the emails, and runs every queued task before the program exits.
#include <background/background.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main() {
  auto send_email = background::task([](std::string to, std::string subject, std::string) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // Simulate sending.
    std::printf("Sent '%s' to %s\n", subject.c_str(), to.c_str());
  });

  // These all return immediately.
  send_email("alice@example.com", "Hello", "How are you?");
  send_email("bob@example.com", "Update", "Project shipped.");
  send_email("charlie@example.com", "Reminder", "Meeting at 3.");

  // The main thread keeps running while the emails send in the background.
  std::printf("All emails queued.\n");
}
